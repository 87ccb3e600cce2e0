"""Who may post: the tenant token (current, or previous within its grace), and X-Signature.

The integration row is cached per process for at most INGEST_SETTINGS_CACHE_SECONDS
(DESIGN.md §5 allows ≤ 5 s), so a warm request spends no query on authentication.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import threading
import time

from django.conf import settings

from integrations.models import IntegrationSettings
from integrations.services import integration_ensure, tenant_token_check

_cache_lock = threading.Lock()
_cached: tuple[float, IntegrationSettings] | None = None


def integration_cached() -> IntegrationSettings:
    """The integration row, re-read from the database at most every few seconds.

    Callers must treat the instance as read-only: it is shared by the process's threads.
    """
    global _cached
    ttl = settings.INGEST_SETTINGS_CACHE_SECONDS
    now = time.monotonic()
    entry = _cached
    if ttl > 0 and entry is not None and entry[0] > now:
        return entry[1]
    row = integration_ensure()
    if ttl > 0:
        with _cache_lock:
            _cached = (now + ttl, row)
    return row


def integration_cache_clear() -> None:
    """Forget the cached row (tests; a token rotation in this process)."""
    global _cached
    with _cache_lock:
        _cached = None


def token_from_authorization(header: str) -> list[str]:
    """Candidate tokens in an Authorization header, most likely first.

    Segment sends ``Basic base64("<token>:")``; a bare ``base64("<token>")`` and a header
    without the ``Basic`` scheme are accepted too, as is an unencoded token.
    """
    value = header.strip()
    if not value:
        return []
    scheme, _, rest = value.partition(" ")
    if rest and scheme.lower() in ("basic", "bearer"):
        value = rest.strip()
    candidates: list[str] = []
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    if decoded:
        user, _, password = decoded.partition(":")
        if user:
            candidates.append(user)
        elif password:
            candidates.append(password)  # ":<token>", the token given as the password
    candidates.append(value)
    return candidates


def token_valid(*, integration: IntegrationSettings, candidates: list[str]) -> bool:
    """True when one candidate is the current token or the previous one within its grace.

    Every candidate is compared (constant time each), so timing does not reveal which matched.
    """
    ok = False
    for candidate in candidates:
        if candidate and tenant_token_check(integration=integration, presented=candidate).valid:
            ok = True
    return ok


def signature_valid(*, secret: str, data: bytes, parsed: object, presented: str) -> bool:
    """Check Segment's X-Signature: hex HMAC-SHA1 of the body, or of an array's first element.

    For an array Segment signs ``JSON.stringify(payload[0])``; re-serialising in Python would
    not reproduce those bytes, so the first element's raw span is located with ``raw_decode``.
    """
    if not presented:
        return False
    signed = data
    if isinstance(parsed, list) and parsed:
        signed = _first_element_bytes(data)
    expected = hmac.new(secret.encode(), signed, hashlib.sha1).hexdigest()
    return hmac.compare_digest(expected.encode(), presented.strip().lower().encode())


# The tokens that matter when finding where a JSON value ends: a whole string (escapes
# included, so a bracket inside one is skipped), or a bracket.
_JSON_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_SCALAR_END = re.compile(rb"[\s,\]]")


def _first_element_bytes(data: bytes) -> bytes:
    """The raw bytes of a JSON array's first element, found without recursion.

    ``json.JSONDecoder.raw_decode`` would give the span, but it recurses: a first element
    nested ~1,000 levels deep raised RecursionError (a 500). Here a regex walks strings and
    brackets, counting depth; the body already parsed as JSON, so the span is well formed.
    """
    start = data.index(b"[") + 1
    while data[start : start + 1] in (b" ", b"\t", b"\r", b"\n"):
        start += 1
    first = data[start : start + 1]
    if first == b'"':
        end = _JSON_TOKEN.match(data, start).end()
    elif first in (b"{", b"["):
        depth = 0
        end = len(data)
        for token in _JSON_TOKEN.finditer(data, start):
            mark = token.group()
            if mark in (b"{", b"["):
                depth += 1
            elif mark in (b"}", b"]"):
                depth -= 1
                if depth == 0:
                    end = token.end()
                    break
    else:  # a number, true, false or null
        found = _SCALAR_END.search(data, start)
        end = found.start() if found else len(data)
    return data[start:end]
