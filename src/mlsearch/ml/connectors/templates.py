"""Request building of ML Commons connectors (spec §3.4): parameter normalisation and escaping, `${parameters.x}`
substitution with `:-default`, `${credential.x}` in headers, payload validation."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from mlsearch.errors import IllegalArgumentError

_PARAM = re.compile(r'(")?\$\{parameters\.([^}:]+?)(\.toString\(\))?(?::-([^}]*))?\}(")?')
_CREDENTIAL = re.compile(r"\$\{credential\.([^}]+)\}")
_LEFTOVER = re.compile(r"\$\{parameters\.([^}:]+?)(?:\.toString\(\))?(?::-[^}]*)?\}")


def escape_json(text: str) -> str:
    """Apache commons-text `escapeJson`: the JSON string escapes (and `/`), no surrounding quotes."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code < 0x20 or code > 0x7E:
            out.append(_unicode(code))
        else:
            out.append(ch)
    return "".join(out)


_ESCAPES = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _unicode(code: int) -> str:
    if code <= 0xFFFF:
        return f"\\u{code:04X}"
    code -= 0x10000  # outside the BMP: a surrogate pair, as Java holds it
    return f"\\u{0xD800 + (code >> 10):04X}\\u{0xDC00 + (code & 0x3FF):04X}"


def to_text(value: Any) -> str:
    """A parameter value as text: strings as they are, anything else JSON-serialised (compact, no HTML escaping)."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def is_json_container(text: str) -> bool:
    """Whether a text is a JSON object or array (inserted verbatim rather than escaped)."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return False
    try:
        orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return False
    return True


def normalise(params: Mapping[str, Any], no_escape: Iterable[str] = ()) -> dict[str, str]:
    """Request (or pre-process) parameters as substituted: JSON containers verbatim, other values JSON-escaped."""
    keep = set(no_escape)
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        text = to_text(value)
        out[key] = text if key in keep or is_json_container(text) else escape_json(text)
    return out


def defaults(params: Mapping[str, Any]) -> dict[str, str]:
    """Connector / model default parameters: as text, never escaped."""
    return {k: to_text(v) for k, v in params.items() if v is not None}


def no_escape_keys(params: Mapping[str, Any]) -> list[str]:
    raw = params.get("no_escape_params")
    return [k.strip() for k in str(raw).split(",") if k.strip()] if raw else []


def substitute(template: str, params: Mapping[str, str]) -> str:
    """`${parameters.x}`, `${parameters.x:-default}`, `"${parameters.x:-null}"` and `${parameters.x.toString()}`."""

    def replace(match: re.Match[str]) -> str:
        open_quote, key, to_string, default, close_quote = match.groups()
        value = params.get(key)
        if value is None:
            if default is None:
                return match.group(0)  # left for the missing-placeholder check
            if default == "null" and open_quote and close_quote:
                return "null"
            value = default
        elif to_string:
            value = escape_json(value)
        return f"{open_quote or ''}{value}{close_quote or ''}"

    return _PARAM.sub(replace, template)


def substitute_credentials(text: str, credential: Mapping[str, str]) -> str:
    return _CREDENTIAL.sub(lambda m: credential.get(m.group(1), m.group(0)), text)


def missing_placeholders(text: str) -> list[str]:
    return list(dict.fromkeys(_LEFTOVER.findall(text)))


def build_payload(template: str | None, params: Mapping[str, str]) -> str | None:
    """The request body: the template filled in and checked (JSON or NDJSON, no unfilled placeholder)."""
    if template is None:
        return params.get("http_body")
    payload = substitute(template, params)
    if str(params.get("skip_validating_missing_parameters", "")).lower() != "true":
        missing = missing_placeholders(payload)
        if missing:
            raise IllegalArgumentError(f"Some parameter placeholder not filled in payload: {', '.join(missing)}")
    if not _valid_json_or_ndjson(payload):
        raise IllegalArgumentError(f"Invalid payload: {payload}")
    return payload


def _valid_json_or_ndjson(payload: str) -> bool:
    try:
        orjson.loads(payload)
        return True
    except orjson.JSONDecodeError:
        pass
    lines = [line for line in payload.splitlines() if line.strip()]
    if len(lines) < 2:
        return False
    try:
        for line in lines:
            orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True
