"""Tokens never reach the logs: one redaction, applied to access and error logs alike.

What carries a secret in a request: the ``Authorization`` header (Segment sends the tenant
token as the Basic user name, which gunicorn's access log prints as ``%(u)s``), a body's or a
query's ``writeKey``, and paths with a token in them — Planhat-format routes
``/analytics/<token>`` and ``/dimensiondata/<token>``, and the Segment SDKs'
``/v1/projects/<write key>/settings``. :func:`redact` replaces each with ``[redacted]``.

- Django / Celery logs: :class:`RedactingFilter` on the handlers (``settings.LOGGING``, and the
  handlers Celery installs, see ``planhat_segment.celery``), over the message, its arguments,
  the traceback text and string ``extra`` fields.
- gunicorn: :class:`RedactingGunicornLogger` (``--logger-class`` in the Procfile) redacts the
  access log's atoms (request line, path, query, user, headers, referer) and filters its
  error log.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization values: "Basic <b64>", "Bearer <t>", "Token <key>" (DRF API keys).
    (re.compile(r"\b(Basic|Bearer|Token)\s+[A-Za-z0-9+/=._~-]{12,}", re.I), rf"\1 {REDACTED}"),
    # A header dump or repr: 'Authorization': '<anything>' / HTTP_AUTHORIZATION=...
    (
        re.compile(r"""((?:HTTP_)?Authorization['"]?\s*[:=]\s*['"]?)[^'",}\s][^'",}]*""", re.I),
        rf"\1{REDACTED}",
    ),
    # writeKey in JSON, a repr, or a query string.
    (
        re.compile(r"""(['"]?write_?key['"]?\s*[:=]\s*['"]?)[^'"&\s,}]+""", re.I),
        rf"\1{REDACTED}",
    ),
    # Tokens in paths (Planhat-format routes, the SDKs' settings route), and ?token=.
    # The token is the segment after /analytics/bulk/, /analytics/stream/csv/, /analytics/ or
    # /dimensiondata/ (never the fixed words "bulk" and "stream" of the bare routes).
    (
        re.compile(
            r"(/(?:analytics/bulk|analytics/stream/csv|analytics|dimensiondata)/)"
            r"(?!(?:bulk|stream)(?:[/?\s'\"]|$))[^/?\s'\"]+"
        ),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"(/v1/projects/)[^/?\s'\"]+"), rf"\1{REDACTED}"),
    (re.compile(r"([?&](?:token|api_key|apikey)=)[^&\s'\"]+", re.I), rf"\1{REDACTED}"),
)


def redact(text: str) -> str:
    """``text`` with every token it carries replaced by ``[redacted]``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# Attributes every LogRecord has: the rest came from ``extra`` and may carry request data.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """Redacts a record in place (message, traceback, string extras); never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


def handlers_redact(logger: logging.Logger) -> None:
    """Add the redacting filter to every handler of ``logger`` that lacks it."""
    for handler in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


try:
    from gunicorn.glogging import Logger as _GunicornLogger
except ImportError:  # gunicorn is a runtime dependency; tolerate its absence in tools
    _GunicornLogger = object  # type: ignore[assignment,misc]


class RedactingGunicornLogger(_GunicornLogger):  # type: ignore[misc,valid-type]
    """gunicorn's logger with tokens redacted from the access log and the error log."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            handlers_redact(log)

    def atoms(self, resp, req, environ, request_time) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        if atoms.get("u", "-") != "-":
            atoms["u"] = REDACTED  # the Basic auth user name is the tenant token
        for key, value in atoms.items():
            if isinstance(value, str):
                if key in ("{authorization}i", "{http_authorization}e"):
                    atoms[key] = REDACTED
                else:
                    atoms[key] = redact(value)
        return atoms
