"""Plain-words validation of alert rules and webhooks, shared by the admin forms and the API.

Each function returns ``{field: message}`` for every problem (empty when the input is fine),
so both surfaces name the same field the same way: a missing or meaningless parameter for
the rule's kind is an error on that parameter.
"""

from __future__ import annotations

import ipaddress
import math
import socket
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from ..models import Band
from ..models_alerts import (
    KIND_PARAMETERS,
    OPTIONAL_PARAMETERS,
    RULE_FIELDS,
    AlertRule,
    Operator,
    RuleKind,
)

KIND_WORDS = dict(RuleKind.choices)
PARAMETER_WORDS = {
    "drop_percent": "the drop in percent",
    "window_days": "the window in days",
    "baseline_periods": "the number of earlier periods averaged",
    "action": "the action",
    "days": "the number of days without activity",
    "threshold": "the threshold",
    "metric": "the metric",
    "operator": "the operator (lt or gt)",
    "to_band": "the band (green, amber or red)",
}
MAX_WINDOW_DAYS = 365
MAX_BASELINE_PERIODS = 24
MAX_HISTORY_DAYS = 730  # N × (M + 1): what the rollups are expected to hold
MAX_COOLDOWN_HOURS = 24 * 365
MAX_RECIPIENTS = 50
MIN_SECRET_LENGTH = 16


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _is_set(name: str, value: Any) -> bool:
    if name in ("action", "operator", "to_band"):
        return bool(value)
    return value is not None and value != ""


def _whole(value: Any, low: int, high: int, what: str) -> str | None:
    number = _number(value)
    if number is None or number != int(number):
        return f"Give {what} as a whole number from {low} to {high}."
    if not low <= number <= high:
        return f"{what.capitalize()} must be from {low} to {high}; got {number:g}."
    return None


def _parameter_problems(kind: str, values: dict[str, Any]) -> dict[str, str]:
    problems: dict[str, str] = {}
    words = KIND_WORDS[kind].lower()
    wanted = KIND_PARAMETERS[kind]
    for name in PARAMETER_WORDS:
        given = _is_set(name, values.get(name))
        if name in wanted and not given and name not in OPTIONAL_PARAMETERS:
            problems[name] = f"Required for a '{words}' rule: give {PARAMETER_WORDS[name]}."
        elif name not in wanted and given:
            users = [
                KIND_WORDS[k].lower() for k, params in KIND_PARAMETERS.items() if name in params
            ]
            problems[name] = (
                f"Means nothing for a '{words}' rule (only for: {', '.join(users)}); "
                "leave it empty."
            )
    if problems:
        return problems
    if kind == RuleKind.USAGE_DROP:
        drop = _number(values.get("drop_percent"))
        if drop is None or not 0 < drop <= 100:
            problems["drop_percent"] = (
                "Give the drop in percent: more than 0 and at most 100 (50 = usage halved)."
            )
        for name, high in (
            ("window_days", MAX_WINDOW_DAYS),
            ("baseline_periods", MAX_BASELINE_PERIODS),
        ):
            problem = _whole(values.get(name), 1, high, PARAMETER_WORDS[name])
            if problem:
                problems[name] = problem
        if not problems:
            span = int(values["window_days"]) * (int(values["baseline_periods"]) + 1)
            if span > MAX_HISTORY_DAYS:
                problems["baseline_periods"] = (
                    f"window_days × (baseline_periods + 1) is {span} days; keep it at most "
                    f"{MAX_HISTORY_DAYS}."
                )
        if len(values.get("action") or "") > 255:
            problems["action"] = "An action name has at most 255 characters."
    elif kind == RuleKind.INACTIVITY:
        problem = _whole(values.get("days"), 1, MAX_WINDOW_DAYS, PARAMETER_WORDS["days"])
        if problem:
            problems["days"] = problem
    elif kind == RuleKind.ACTIVE_ENDUSERS_BELOW:
        problem = _whole(values.get("threshold"), 1, 1_000_000, "the threshold")
        if problem:
            problems["threshold"] = problem + " (alert when fewer endusers were active)"
        problem = _whole(values.get("window_days"), 1, MAX_WINDOW_DAYS, "the window in days")
        if problem:
            problems["window_days"] = problem
    elif kind == RuleKind.METRIC_THRESHOLD:
        if values.get("operator") not in Operator.values:
            problems["operator"] = "Choose lt (alert below the threshold) or gt (above it)."
        if _number(values.get("threshold")) is None:
            problems["threshold"] = "Give the threshold as a finite number."
    elif kind == RuleKind.HEALTH_BAND_CHANGE and values.get("to_band") not in Band.values:
        problems["to_band"] = "Choose the band: green, amber or red."
    return problems


def email_list_problem(addresses: Any) -> str | None:
    """A problem with a list of email addresses, or None."""
    if addresses in (None, ""):
        return None
    if not isinstance(addresses, list | tuple):
        return "Give a list of email addresses."
    if len(addresses) > MAX_RECIPIENTS:
        return f"At most {MAX_RECIPIENTS} addresses."
    bad = []
    for address in addresses:
        try:
            validate_email(address if isinstance(address, str) else "")
        except ValidationError:
            bad.append(str(address))
    if bad:
        return "Not an email address: " + ", ".join(repr(b) for b in bad[:5]) + "."
    return None


def rule_problems(values: dict[str, Any]) -> dict[str, str]:
    """Problems of a rule's fields: its kind's parameters, cooldown, scope and recipients."""
    problems: dict[str, str] = {}
    if not (values.get("name") or "").strip():
        problems["name"] = "Give the rule a name."
    kind = values.get("kind")
    if kind not in KIND_WORDS:
        problems["kind"] = "Choose what the rule watches: one of " + ", ".join(KIND_WORDS) + "."
    else:
        problems |= _parameter_problems(kind, values)
    cooldown = values.get("cooldown_hours")
    if cooldown is not None:
        problem = _whole(cooldown, 0, MAX_COOLDOWN_HOURS, "the cooldown in hours")
        if problem:
            problems["cooldown_hours"] = problem
    min_mrr = values.get("min_mrr")
    if min_mrr not in (None, ""):
        try:
            ok = Decimal(str(min_mrr)) >= 0
        except InvalidOperation:
            ok = False
        if not ok:
            problems["min_mrr"] = (
                "Give the minimum MRR as a number of 0 or more, or leave it empty."
            )
    problem = email_list_problem(values.get("email_recipients"))
    if problem:
        problems["email_recipients"] = problem
    return problems


def rule_object_problems(rule: AlertRule) -> dict[str, str]:
    """``rule_problems`` of a rule object as it stands, its metric by id (nothing is fetched).

    The model's ``clean`` (admin) and the rule service (API) both check a rule this way.
    """
    values = {name: getattr(rule, name) for name in RULE_FIELDS if name != "metric"}
    values["metric"] = rule.metric_id
    return rule_problems(values)


# --- Webhooks --------------------------------------------------------------------------------


class UnsafeUrl(ValueError):
    """A webhook URL this install refuses to call, with the reason in plain words."""


class UnresolvableHost(UnsafeUrl):
    """The host does not resolve (now): refused when saving, retried when sending."""


def _allowed_hosts() -> set[str]:
    return {h.strip().lower().rstrip(".") for h in settings.WEBHOOK_ALLOWED_HOSTS if h.strip()}


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a non-public address"
    return None


def _resolve(host: str, port: int) -> Iterable[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(f"The host {host!r} could not be resolved ({exc}).") from exc
    return {info[4][0] for info in infos}


def webhook_url_check(url: str) -> None:
    """Raise :class:`UnsafeUrl` unless ``url`` is http(s) and its host resolves only to public
    addresses (or the host is listed in ``WEBHOOK_ALLOWED_HOSTS``).

    Called when a webhook is saved and again before each delivery, so a name that later
    resolves inside the network is refused at send time too.
    """
    try:
        parts = urlsplit(url or "")
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"Not a valid URL ({exc}).") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl(
            f"Only http:// and https:// URLs can receive webhooks; got {parts.scheme or 'none'}://."
        )
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise UnsafeUrl("The URL has no host.")
    if parts.username or parts.password:
        raise UnsafeUrl("Put credentials in the secret, not in the URL.")
    if host in _allowed_hosts():
        return
    port = port or (443 if parts.scheme == "https" else 80)
    for text in sorted(_resolve(host, port)):
        reason = _refused(ipaddress.ip_address(text.split("%", 1)[0]))
        if reason:
            raise UnsafeUrl(
                f"The host {host!r} resolves to {text}, {reason}: webhooks cannot be aimed "
                "inside the network. An operator may allow it with WEBHOOK_ALLOWED_HOSTS."
            )


def webhook_problems(values: dict[str, Any], *, creating: bool) -> dict[str, str]:
    """Problems of a webhook's fields (``secret`` may be left out when not creating)."""
    problems: dict[str, str] = {}
    if not (values.get("name") or "").strip():
        problems["name"] = "Give the webhook a name."
    try:
        webhook_url_check(values.get("url") or "")
    except UnsafeUrl as exc:
        problems["url"] = str(exc)
    secret = values.get("secret")
    if (secret or creating) and len(secret or "") < MIN_SECRET_LENGTH:
        problems["secret"] = (
            f"Give a secret of at least {MIN_SECRET_LENGTH} characters: it signs each body "
            "(X-Signature), so the receiver can check the call came from here."
        )
    return problems
