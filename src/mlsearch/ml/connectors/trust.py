"""Trusted connector endpoints: `plugins.ml_commons.trusted_connector_endpoints_regex` (full match) and the private-IP
rule, checked when a connector is created or updated and again on every call (and redirect)."""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import urllib.parse
from collections.abc import Callable
from typing import Any

from mlsearch.errors import IllegalArgumentError

_P = "plugins.ml_commons."
UNTRUSTED = "Connector URL is not matching the trusted connector endpoint regex"


def check_pattern(url: str, setting: Callable[[str], Any]) -> None:
    """Refuse a URL no trusted pattern fully matches. Placeholders (`${parameters.x}`) are checked once resolved."""
    patterns = tuple(setting(_P + "trusted_connector_endpoints_regex") or ())
    patterns += tuple(setting(_P + "trusted_connector_private_endpoints_regex") or ())
    if not patterns:
        raise IllegalArgumentError("Trusted connector endpoints regex is not configured. Please configure it.")
    if not _trusted(url, patterns):
        raise IllegalArgumentError(UNTRUSTED)


@functools.lru_cache(maxsize=1024)
def _trusted(url: str, patterns: tuple[str, ...]) -> bool:
    """Cached: every call of a connector checks its (usually unchanging) URL against a dozen patterns."""
    return any(re.fullmatch(p, url) for p in patterns)


def check_call(url: str, setting: Callable[[str], Any]) -> None:
    """At call time: the resolved URL is trusted, and a private address is allowed only by setting or private regex."""
    check_pattern(url, setting)
    if setting(_P + "connector.private_ip_enabled"):
        return
    if any(re.fullmatch(p, url) for p in setting(_P + "trusted_connector_private_endpoints_regex") or []):
        return
    host = urllib.parse.urlsplit(url).hostname or ""
    if _is_private(host):
        raise IllegalArgumentError(f"Remote inference host name has private ip address: {host}")


@functools.lru_cache(maxsize=256)
def _is_private(host: str) -> bool:
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False  # unresolvable: the call itself fails with a connection error
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    return any(a.is_private or a.is_loopback or a.is_link_local or a.is_unspecified for a in addresses)
