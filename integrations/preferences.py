"""A person's display preferences (their time zone), and the middleware that applies it.

Display only: the admin shows times in the zone a person picked (default UTC) and names the
zone; day buckets of charts, rollups, scores and alerts stay UTC days whatever is active.
"""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone

from .models import UserPreference

SESSION_KEY = "planhat_time_zone"


def user_time_zone(*, user: AbstractBaseUser) -> str:
    """The zone ``user`` picked, ``settings.TIME_ZONE`` (UTC) when they picked none."""
    zone = UserPreference.objects.filter(user=user).values_list("time_zone", flat=True).first()
    return zone or settings.TIME_ZONE


def user_time_zone_set(*, user: AbstractBaseUser, time_zone: str) -> UserPreference:
    """Store ``user``'s zone; raises ValidationError for a name that is not an IANA zone."""
    preference = UserPreference.objects.filter(user=user).first() or UserPreference(user=user)
    preference.time_zone = time_zone.strip()
    preference.full_clean(exclude=["user"])
    preference.save()
    return preference


def time_zone_remember(sender, request: HttpRequest | None, user, **kwargs) -> None:
    """``user_logged_in`` receiver: keep the person's zone in their new session."""
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = user_time_zone(user=user)


class UserTimeZoneMiddleware:
    """Activates the signed-in person's zone on admin pages (after AuthenticationMiddleware).

    The zone is read once per session and kept there, so a page costs no extra query; the
    API and the ingest endpoints are left alone (ISO times in UTC; no session to read).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._prefix: str | None = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self._prefix is None:
            self._prefix = reverse("admin:index")
        zone = None
        if request.path.startswith(self._prefix):
            zone = self._zone(request)
        if zone is None:
            return self.get_response(request)
        timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()

    def _zone(self, request: HttpRequest) -> ZoneInfo | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        name = request.session.get(SESSION_KEY)
        if name is None:
            name = user_time_zone(user=user)
            request.session[SESSION_KEY] = name
        try:
            return ZoneInfo(name)
        except (ValueError, KeyError):  # a zone removed from the system's database
            return None
