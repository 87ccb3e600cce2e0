"""Template tags of the admin's layout: which change-list columns a phone shows."""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

PHONE_MAX_WIDTH = 767  # px: Django admin's own breakpoint for small screens
DEFAULT_PHONE_COLUMNS = 3


def phone_columns(model_admin, list_display) -> list[str]:
    """The columns a phone shows: the admin's ``phone_columns`` (those in the list), else the
    first three. The rest are on the object's own page."""
    shown = [name for name in list_display if name != "action_checkbox"]
    wanted = getattr(model_admin, "phone_columns", None)
    if wanted:
        return [name for name in wanted if name in shown] or shown[:1]
    return shown[:DEFAULT_PHONE_COLUMNS]


@register.simple_tag
def phone_columns_css(cl) -> SafeString:
    """A ``<style>`` that hides, on a phone, every change-list column but the few that
    matter, so lists never scroll sideways (Django names header cells ``column-<name>`` and
    body cells ``field-<name>``)."""
    if cl is None or not hasattr(cl, "model_admin"):
        return mark_safe("")
    keep = phone_columns(cl.model_admin, cl.list_display)
    head = "".join(f":not(.column-{name})" for name in keep)
    body = "".join(f":not(.field-{name})" for name in keep)
    rule = (
        f"@media (max-width: {PHONE_MAX_WIDTH}px) {{ "
        f"#result_list thead th:not(.action-checkbox-column){head}, "
        f"#result_list tbody td:not(.action-checkbox){body}, "
        f"#result_list tbody th{body} {{ display: none; }} }}"
    )
    return format_html('<style data-phone-columns="{}">{}</style>', " ".join(keep), rule)
