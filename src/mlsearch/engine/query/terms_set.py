"""The `terms_set` query: documents matching at least a required number of the given terms.

The required number comes from a numeric field of each document (`minimum_should_match_field`) or a script
(`minimum_should_match_script`). Scripts are read, not run: the forms OpenSearch's documentation and clients use are
recognised (`params.num_terms`, a whole number, `doc['f'].value`, and `Math.min` / `Math.max` of those two), and
anything else is refused with a 400 rather than guessed at.

It compiles to plain bool queries, so the score is what Lucene's covering query gives: the sum of the matching
terms' scores. A per-document requirement becomes one bucket per possible value r in 1..n (n terms): "the field is
r, and at least r terms match"; a document without the field, or asking for more than n, matches nothing, and one
asking for 0 or less needs one matching term (the covering query walks the terms' union)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import tantivy

from mlsearch.engine.query import dsl
from mlsearch.engine.query.compile import Context, boosted, compile_query, compiles, nothing
from mlsearch.errors import IllegalArgumentError, ParsingError

_NUM_TERMS = "params.num_terms"
_DOC_VALUE = re.compile(r"""doc\[\s*(['"])(?P<field>[^'"]+)\1\s*\]\.value""")
_MIN_MAX = re.compile(r"Math\.(?P<fn>min|max)\((?P<a>[^,]+),(?P<b>[^)]+)\)")


@dataclass(frozen=True, slots=True)
class Required:
    """How many terms a document needs: a constant, or its `field` value clamped to [floor, ceiling]."""

    constant: int | None = None
    field: str | None = None
    floor: int | None = None  # Math.max(num_terms, doc[f]): at least this many
    ceiling: int | None = None  # Math.min(num_terms, doc[f]): at most this many


@dataclass(frozen=True, slots=True)
class TermsSet(dsl.Query):
    field: str
    values: tuple[Any, ...]
    required: Required
    boost: float = 1.0


@dsl.query_parser("terms_set")
def parse_terms_set(body: Any) -> dsl.Query:
    if not isinstance(body, dict) or not body:
        raise ParsingError("[terms_set] unknown token [END_OBJECT]")
    fields = [k for k in body if k not in ("boost", "_name")]
    if len(fields) != 1 or not isinstance(body[fields[0]], dict):
        raise ParsingError("[terms_set] unknown token [VALUE_STRING]" if fields else "[terms_set] no field specified")
    name, spec = fields[0], body[fields[0]]
    for key, value in spec.items():
        if key not in ("terms", "minimum_should_match_field", "minimum_should_match_script", "boost", "_name"):
            raise ParsingError(f"[terms_set] query does not support [{key}]")
        if key == "terms" and not isinstance(value, list):
            raise ParsingError(f"[terms_set] query does not support [{key}]")
    field_spec, script = spec.get("minimum_should_match_field"), spec.get("minimum_should_match_script")
    if field_spec is not None and script is not None:
        raise IllegalArgumentError("A script has already been specified. Cannot specify both a field and script")
    values = tuple(spec.get("terms") or ())
    if field_spec is not None:
        required = Required(field=str(field_spec))
    elif script is not None:
        required = _from_script(script, len(values))
    else:
        raise IllegalArgumentError("No minimum should match has been specified")
    try:
        boost = float(spec.get("boost", body.get("boost", 1.0)))
    except (TypeError, ValueError):
        raise ParsingError("[terms_set] failed to parse field [boost]") from None
    return TermsSet(name, values, required, boost)


def _from_script(script: Any, n: int) -> Required:
    if isinstance(script, str):
        script = {"source": script}
    if not isinstance(script, dict) or not isinstance(script.get("source"), str):
        raise ParsingError("[terms_set] query does not support [minimum_should_match_script]")
    if script.get("lang", "painless") != "painless":
        raise IllegalArgumentError(f"script_lang not supported [{script['lang']}]")
    params = script.get("params") or {}
    source = " ".join(script["source"].split()).rstrip(";").strip()
    single = _operand(source, params, n)
    if single is not None:
        return single
    m = _MIN_MAX.fullmatch(source)
    if m:
        a, b = _operand(m["a"].strip(), params, n), _operand(m["b"].strip(), params, n)
        if a is not None and b is not None:
            const, per_doc = (a, b) if a.constant is not None else (b, a)
            if const.constant is not None and per_doc.constant is None:
                bound = const.constant
                return Required(field=per_doc.field, **({"ceiling": bound} if m["fn"] == "min" else {"floor": bound}))
            if a.constant is not None and b.constant is not None:
                pick = min if m["fn"] == "min" else max
                return Required(constant=pick(a.constant, b.constant))
    raise IllegalArgumentError(
        f"minimum_should_match_script [{script['source']}] is not supported: mlsearch reads params.num_terms, "
        "whole numbers, doc['field'].value and Math.min / Math.max of those"
    )


def _operand(text: str, params: dict[str, Any], n: int) -> Required | None:
    if text == _NUM_TERMS:
        return Required(constant=n)
    if text.startswith("params.") and isinstance(params.get(text[7:]), int):
        return Required(constant=int(params[text[7:]]))
    if re.fullmatch(r"-?\d+", text):
        return Required(constant=int(text))
    m = _DOC_VALUE.fullmatch(text)
    return Required(field=m["field"]) if m else None


@compiles(TermsSet)
def compile_terms_set(q: TermsSet, ctx: Context) -> tantivy.Query:
    n = len(q.values)
    if n == 0:
        return nothing()
    terms = tuple(dsl.Term(q.field, v) for v in q.values)

    def at_least(r: int) -> dsl.Query:
        return dsl.Bool(should=terms, minimum_should_match=str(max(r, 1)))

    req = q.required
    if req.constant is not None:
        return nothing() if req.constant > n else boosted(compile_query(at_least(req.constant), ctx), q.boost)
    assert req.field is not None
    if req.ceiling is not None and req.ceiling <= 0:  # every document with the field asks for at most 0: one term
        exists = dsl.Range(req.field)
        return boosted(compile_query(dsl.Bool(must=(at_least(1),), filter=(exists,)), ctx), q.boost)
    buckets: list[dsl.Query] = []
    # Documents whose clamped requirement is r, for each r a document can meet.
    for r in range(1, n + 1):
        if req.floor is not None and r < req.floor:
            continue
        low, high = r, r
        if req.floor is not None and r == req.floor:
            low = None  # every value at or below the floor asks for the floor
        if req.ceiling is not None and r == req.ceiling:
            high = None  # every value at or above the ceiling asks for the ceiling
        if req.ceiling is not None and r > req.ceiling:
            break
        bounds = dsl.Range(req.field, gte=low, lte=high)
        buckets.append(dsl.Bool(must=(at_least(r),), filter=(bounds,)))
    if req.floor is None or req.floor <= 0:
        buckets.append(dsl.Bool(must=(at_least(1),), filter=(dsl.Range(req.field, lte=0),)))
    return boosted(compile_query(dsl.Bool(should=tuple(buckets), minimum_should_match="1"), ctx), q.boost)
