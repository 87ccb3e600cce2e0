"""Keys in URL paths never reach the logs.

Planhat's open endpoints take the tenant token in the path (``/analytics/<token>``,
``/analytics/bulk/<token>``, ``/analytics/stream/csv/<token>``, ``/dimensiondata/<token>``)
and analytics.js puts the write key in ``/v1/projects/<key>/settings``. Django logs a path on
every 4xx / 5xx (``django.request``) and gunicorn logs every request line, so both go through
:func:`redact`: the :class:`RedactKeysFilter` on the console handler (settings.LOGGING) and
the :class:`GunicornLogger` access log (Procfile, ``--logger-class``).
"""

from __future__ import annotations

import logging
import re

from gunicorn.glogging import Logger

# A key is at least 8 URL-safe characters (ours are 43 or more), so the fixed words of the
# bare routes (/analytics/bulk, /analytics/stream/csv) are never taken for one.
_KEY_IN_PATH = re.compile(
    r"(/(?:analytics/bulk|analytics/stream/csv|analytics|dimensiondata|v1/projects)/)"
    r"[A-Za-z0-9_\-.~%]{8,}"
)
REDACTED = "<redacted>"


def redact(text: str) -> str:
    """``text`` with every key in a URL path replaced by ``<redacted>``."""
    return _KEY_IN_PATH.sub(r"\1" + REDACTED, text)


class RedactKeysFilter(logging.Filter):
    """Rewrites a record's message with the keys in URL paths redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class GunicornLogger(Logger):
    """gunicorn's logger with the keys in request lines, paths and referers redacted."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {k: redact(v) if isinstance(v, str) else v for k, v in atoms.items()}
