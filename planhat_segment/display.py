"""How the admin writes times and durations for people: in the reader's time zone (the one
they picked, default UTC), always naming the zone, with seconds; durations as "0.3 s".

Display only: day buckets of charts, rollups, scores and alerts are UTC days whatever zone is
active (their code truncates with ``tzinfo=UTC``).
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

WHEN_FORMAT = "%Y-%m-%d %H:%M:%S %Z"


def when_text(value: datetime | None, *, seconds: bool = True) -> str:
    """``2026-03-01 14:05:09 CET``: the active zone's local time, with the zone's name."""
    if value is None:
        return "—"
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return local.strftime(WHEN_FORMAT if seconds else "%Y-%m-%d %H:%M %Z").strip()


def seconds_text(total: float | None) -> str:
    """``0.3 s``, ``12 s``, ``4 min 05 s``, ``1 h 02 min``."""
    if total is None:
        return "—"
    if total < 10:
        return f"{total:.1f} s"
    whole = round(total)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
