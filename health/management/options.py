"""Options health's management commands share."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import CommandError


def utc_day_option(value: str | None) -> dt.date | None:
    """The ``--day YYYY-MM-DD`` value as a date; None when not given (the services use today)."""
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--day must be a date like 2026-03-15; got {value!r}.") from exc
