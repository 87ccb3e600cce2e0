"""Admin of alerts: the alert inbox, rules and webhooks (validated in plain words), and the
notification deliveries with their attempts (read-only).

Presentation plus calls to ``health.alerts`` / ``health.notifications`` services. Each
custom view and action names the permission it needs:

- ``health.view_*``: the inbox, rules, webhooks and deliveries (read-only);
- ``health.acknowledge_alert`` / ``health.resolve_alert``: the inbox's buttons and actions;
- ``health.add/change/delete_alertrule`` and ``_webhook``: editing rules and webhooks;
- ``health.evaluate_alertrule``: "Evaluate rules now";
- ``health.retry_delivery``: queueing failed deliveries again.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import CharField, Count, OuterRef, Q, Subquery
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from planhat_segment.models import Company

from ..alerts import (
    AlertStateError,
    alert_acknowledge,
    alert_resolve,
    alert_rule_saved,
    alerts_acknowledge,
    alerts_evaluate,
    alerts_resolve,
)
from ..models import Band, HealthScore
from ..models_alerts import (
    ACTIVE_STATUSES,
    RULE_FIELDS,
    Alert,
    AlertRule,
    AlertStatus,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    RuleKind,
    Webhook,
)
from ..notifications import deliveries_retry
from ..notifications.messages import alert_payload_of

STATUS_COLOURS = {
    AlertStatus.OPEN: "#c62828",
    AlertStatus.ACKNOWLEDGED: "#f9a825",
    AlertStatus.RESOLVED: "#2e7d32",
    DeliveryStatus.PENDING: "#f9a825",
    DeliveryStatus.DELIVERED: "#2e7d32",
    DeliveryStatus.FAILED: "#c62828",
}
BAND_COLOURS = {"green": "#2e7d32", "amber": "#f9a825", "red": "#c62828"}


def _badge(value: str, label: str, colours: dict) -> str:
    return format_html(
        '<span style="color:#fff;background:{};padding:1px 6px;border-radius:8px">{}</span>',
        colours.get(value, "#777"),
        label,
    )


def _perm(codename: str):
    """A ``has_<name>_permission`` method: true when the user holds ``health.<codename>``."""

    def has_permission(self, request) -> bool:
        return request.user.has_perm(f"health.{codename}")

    has_permission.required_permission = f"health.{codename}"
    return has_permission


def _declared(view, **methods):
    """A view function carrying the permissions each HTTP method needs
    (``required_permissions``, read by the project's route checks); the view itself checks
    them too."""

    def wrapped(request, *args, **kwargs):
        return view(request, *args, **kwargs)

    wrapped.required_permissions = {m.upper(): tuple(p) for m, p in methods.items()}
    return wrapped


def _facts_table(facts: dict) -> str:
    if not facts:
        return "—"
    rows = format_html_join(
        "",
        "<tr><th style='text-align:left;padding-right:1em'>{}</th><td>{}</td></tr>",
        (
            (key, json.dumps(value) if not isinstance(value, str) else value)
            for key, value in facts.items()
        ),
    )
    return format_html("<table>{}</table>", rows)


# --- Alert inbox -------------------------------------------------------------------------------


class BandFilter(admin.SimpleListFilter):
    """The company's current health band (its latest score row)."""

    title = "health band"
    parameter_name = "band"

    def lookups(self, request, model_admin):
        return [*Band.choices, ("none", "No score")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "none":
            return queryset.filter(company_band__isnull=True)
        if value in Band.values:
            return queryset.filter(company_band=value)
        return queryset


class CompanyFilter(admin.SimpleListFilter):
    """One company's alerts (the link on a company's page); lists companies with active
    alerts, so the filter stays short however many companies there are."""

    title = "company"
    parameter_name = "company"

    def lookups(self, request, model_admin):
        ids = set(
            Alert.objects.filter(status__in=ACTIVE_STATUSES).values_list("company_id", flat=True)[
                :50
            ]
        )
        if (self.value() or "").isdigit():
            ids.add(int(self.value()))
        return list(Company.objects.filter(pk__in=ids).order_by("name").values_list("pk", "name"))

    def queryset(self, request, queryset):
        if (self.value() or "").isdigit():
            return queryset.filter(company_id=int(self.value()))
        return queryset


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("channel", "target", "status", "attempt_count", "last_status_code", "last_error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """The alert inbox: open / acknowledged / resolved, by rule, company and band."""

    list_display = (
        "id",
        "status_badge",
        "company_link",
        "rule",
        "band",
        "summary",
        "opened_at",
        "resolved_at",
    )
    list_display_links = ("id", "summary")
    list_filter = ("status", "rule", "rule__kind", BandFilter, CompanyFilter, "resolution")
    list_select_related = ("rule", "company", "acknowledged_by", "resolved_by")
    search_fields = ("company__name", "company__external_id", "rule__name")
    date_hierarchy = "opened_at"
    actions = ("acknowledge_selected", "resolve_selected")
    inlines = (DeliveryInline,)
    fields = (
        "status",
        "rule",
        "company",
        "day",
        "opened_at",
        "facts_display",
        "acknowledged_at",
        "acknowledged_by",
        "resolved_at",
        "resolved_by",
        "resolution",
        "resolution_note",
        "resolution_facts_display",
    )
    readonly_fields = fields
    change_form_template = "admin/health/alert/change_form.html"

    has_acknowledge_permission = _perm("acknowledge_alert")
    has_resolve_permission = _perm("resolve_alert")

    def get_queryset(self, request):
        latest = HealthScore.objects.filter(company=OuterRef("company_id")).order_by("-day")
        return (
            super()
            .get_queryset(request)
            .annotate(company_band=Subquery(latest.values("band")[:1], output_field=CharField()))
        )

    def has_add_permission(self, request) -> bool:
        return False  # alerts are opened by evaluation only

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # read-only: people act through acknowledge / resolve

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Alert) -> str:
        return _badge(obj.status, obj.get_status_display(), STATUS_COLOURS)

    @admin.display(description="company", ordering="company__name")
    def company_link(self, obj: Alert) -> str:
        url = reverse("admin:planhat_segment_company_change", args=[obj.company_id])
        return format_html('<a href="{}">{}</a>', url, obj.company.name)

    @admin.display(description="band now", ordering="company_band")
    def band(self, obj: Alert) -> str:
        band = getattr(obj, "company_band", None)
        return _badge(band, band, BAND_COLOURS) if band else "—"

    @admin.display(description="what happened")
    def summary(self, obj: Alert) -> str:
        return (obj.facts or {}).get("summary", "—")

    @admin.display(description="figures that raised it")
    def facts_display(self, obj: Alert) -> str:
        return _facts_table(obj.facts)

    @admin.display(description="figures when it cleared")
    def resolution_facts_display(self, obj: Alert) -> str:
        return _facts_table(obj.resolution_facts)

    @admin.action(description="Acknowledge selected alerts", permissions=["acknowledge"])
    def acknowledge_selected(self, request, queryset):
        count = alerts_acknowledge(
            alert_ids=queryset.values_list("pk", flat=True), user=request.user
        )
        self.message_user(request, f"{count} alert(s) acknowledged.", messages.SUCCESS)

    @admin.action(description="Resolve selected alerts", permissions=["resolve"])
    def resolve_selected(self, request, queryset):
        count = alerts_resolve(alert_ids=queryset.values_list("pk", flat=True), user=request.user)
        self.message_user(request, f"{count} alert(s) resolved.", messages.SUCCESS)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        acknowledge = _declared(self.acknowledge_view, POST=["health.acknowledge_alert"])
        resolve = _declared(self.resolve_view, POST=["health.resolve_alert"])
        return [
            path("<int:pk>/acknowledge/", wrap(acknowledge), name="health_alert_acknowledge"),
            path("<int:pk>/resolve/", wrap(resolve), name="health_alert_resolve"),
            *super().get_urls(),
        ]

    def _act(self, request, pk: int, codename: str, act):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm(f"health.{codename}"):
            raise PermissionDenied
        alert = get_object_or_404(Alert, pk=pk)
        try:
            act(alert)
        except AlertStateError as exc:
            self.message_user(request, str(exc), messages.WARNING)
        return HttpResponseRedirect(reverse("admin:health_alert_change", args=[pk]))

    def acknowledge_view(self, request, pk: int):
        def act(alert):
            alert_acknowledge(alert=alert, user=request.user)
            self.message_user(request, "Alert acknowledged.", messages.SUCCESS)

        return self._act(request, pk, "acknowledge_alert", act)

    def resolve_view(self, request, pk: int):
        def act(alert):
            alert_resolve(alert=alert, user=request.user, note=request.POST.get("note", ""))
            self.message_user(request, "Alert resolved.", messages.SUCCESS)

        return self._act(request, pk, "resolve_alert", act)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        extra_context["can_acknowledge"] = request.user.has_perm("health.acknowledge_alert")
        extra_context["can_resolve"] = request.user.has_perm("health.resolve_alert")
        return super().change_view(request, object_id, form_url, extra_context)


# --- Rules ------------------------------------------------------------------------------------


class EmailListField(forms.CharField):
    """A list of email addresses typed one per line (or separated by commas)."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 60})

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        seen: set[str] = set()
        addresses = []
        for part in text.replace(",", "\n").splitlines():
            if part.strip() and part.strip().lower() not in seen:
                seen.add(part.strip().lower())
                addresses.append(part.strip())
        return addresses


class AlertRuleForm(forms.ModelForm):
    email_recipients = EmailListField(
        required=False,
        help_text="One address per line. Each new alert is emailed to each of them.",
    )

    class Meta:
        model = AlertRule
        fields = (*RULE_FIELDS, "webhooks")
        widgets = {"action": forms.TextInput(attrs={"size": 40})}


KIND_HELP = (
    "Fill in only what the kind reads — usage dropped: drop %, window days (N), baseline "
    "periods (M), optional action; no activity: days; active endusers below: threshold and "
    "window days; metric: metric, operator, threshold; band change: to band."
)


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    form = AlertRuleForm
    list_display = (
        "name",
        "kind",
        "condition",
        "enabled",
        "cooldown_hours",
        "min_mrr",
        "active_alerts",
        "last_evaluated_at",
    )
    list_filter = ("kind", "enabled")
    search_fields = ("name",)
    filter_horizontal = ("webhooks",)
    actions = ("evaluate_selected",)
    readonly_fields = ("last_evaluated_at", "last_evaluated_day", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "kind", "enabled", "cooldown_hours")}),
        ("Scope", {"fields": ("min_mrr",)}),
        (
            "Condition",
            {
                "description": KIND_HELP,
                "fields": (
                    ("drop_percent", "window_days", "baseline_periods"),
                    "action",
                    "days",
                    "threshold",
                    ("metric", "operator"),
                    "to_band",
                ),
            },
        ),
        ("Who is told", {"fields": ("email_recipients", "notify_owner", "webhooks")}),
        (
            "History",
            {
                "fields": ("last_evaluated_at", "last_evaluated_day", "created_at", "updated_at"),
                "classes": ("collapse",),
            },
        ),
    )
    change_list_template = "admin/health/alertrule/change_list.html"

    has_evaluate_permission = _perm("evaluate_alertrule")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("metric")
            .annotate(active_total=Count("alerts", filter=Q(alerts__status__in=ACTIVE_STATUSES)))
        )

    @admin.display(description="active alerts", ordering="active_total")
    def active_alerts(self, obj: AlertRule) -> str:
        url = reverse("admin:health_alert_changelist")
        return format_html(
            '<a href="{}?rule__id__exact={}&status__in=open,acknowledged">{}</a>',
            url,
            obj.pk,
            obj.active_total,
        )

    @admin.display(description="condition")
    def condition(self, obj: AlertRule) -> str:
        return rule_condition_text(obj)

    def save_model(self, request, obj, form, change) -> None:
        was_enabled = bool(change and form.initial.get("enabled", True))
        super().save_model(request, obj, form, change)
        alert_rule_saved(rule=obj, was_enabled=was_enabled)

    def _evaluate(self, request, rule_ids=None) -> None:
        summary = alerts_evaluate(rule_ids=rule_ids)
        if not summary.rules:
            self.message_user(request, "No enabled rule to evaluate.", messages.WARNING)
            return
        self.message_user(request, str(summary).splitlines()[0], messages.SUCCESS)
        for line in str(summary).splitlines()[1:]:
            self.message_user(request, line.strip(), messages.INFO)

    @admin.action(description="Evaluate selected rules now", permissions=["evaluate"])
    def evaluate_selected(self, request, queryset):
        self._evaluate(request, list(queryset.values_list("pk", flat=True)))

    def get_urls(self):
        evaluate = _declared(self.evaluate_view, POST=["health.evaluate_alertrule"])
        return [
            path(
                "evaluate/",
                self.admin_site.admin_view(evaluate),
                name="health_alertrule_evaluate",
            ),
            *super().get_urls(),
        ]

    def evaluate_view(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("health.evaluate_alertrule"):
            raise PermissionDenied
        self._evaluate(request)
        return HttpResponseRedirect(reverse("admin:health_alert_changelist"))

    def changelist_view(self, request, extra_context=None):
        extra_context = extra_context or {}
        extra_context["can_evaluate"] = request.user.has_perm("health.evaluate_alertrule")
        return super().changelist_view(request, extra_context)


def rule_condition_text(rule: AlertRule) -> str:
    """The rule's condition in a few words, e.g. "drop ≥ 50 % (7 days vs 4 periods)"."""
    kind = rule.kind
    if kind == RuleKind.USAGE_DROP:
        what = f" of {rule.action}" if rule.action else ""
        return (
            f"usage{what} down ≥ {rule.drop_percent:g} % "
            f"({rule.window_days} days vs the {rule.baseline_periods} periods before)"
        )
    if kind == RuleKind.INACTIVITY:
        return f"no activity for {rule.days} days"
    if kind == RuleKind.ACTIVE_ENDUSERS_BELOW:
        return f"fewer than {rule.threshold:g} active endusers over {rule.window_days} days"
    if kind == RuleKind.METRIC_THRESHOLD:
        sign = "<" if rule.operator == "lt" else ">"
        metric = rule.metric.key if rule.metric_id else "?"
        return f"{metric} {sign} {rule.threshold:g}"
    if kind == RuleKind.HEALTH_BAND_CHANGE:
        return f"health band changes to {rule.to_band}"
    return kind


# --- Webhooks ---------------------------------------------------------------------------------


class WebhookForm(forms.ModelForm):
    secret = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Signs each body: X-Signature = hex HMAC-SHA256(secret, raw body). At least "
        "16 characters. Never shown again; leave empty to keep the current one.",
    )

    class Meta:
        model = Webhook
        fields = ("name", "url", "secret", "enabled")

    def clean_secret(self) -> str:
        secret = self.cleaned_data.get("secret") or ""
        if not secret and self.instance.pk:
            return Webhook.objects.values_list("secret", flat=True).get(pk=self.instance.pk)
        return secret


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookForm
    list_display = ("name", "url", "enabled", "rule_count", "last_delivery")
    list_filter = ("enabled",)
    search_fields = ("name", "url")
    readonly_fields = ("created_at", "updated_at")

    def get_queryset(self, request):
        last = Delivery.objects.filter(webhook=OuterRef("pk")).order_by("-created_at")
        return (
            super()
            .get_queryset(request)
            .annotate(
                rules_total=Count("rules", distinct=True),
                last_status=Subquery(last.values("status")[:1], output_field=CharField()),
            )
        )

    @admin.display(description="rules", ordering="rules_total")
    def rule_count(self, obj: Webhook) -> int:
        return obj.rules_total

    @admin.display(description="last delivery")
    def last_delivery(self, obj: Webhook) -> str:
        status = getattr(obj, "last_status", None)
        if not status:
            return "—"
        url = reverse("admin:health_delivery_changelist") + f"?webhook__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _badge(status, status, STATUS_COLOURS))


# --- Deliveries ---------------------------------------------------------------------------------


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = (
        "number",
        "attempted_at",
        "outcome",
        "status_code",
        "duration_ms",
        "error",
        "response_body",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """Read-only: one row per alert × target, with every attempt."""

    list_display = (
        "id",
        "status_badge",
        "channel",
        "target",
        "alert_link",
        "attempt_count",
        "last_status_code",
        "short_error",
        "next_attempt_at",
        "delivered_at",
        "created_at",
    )
    list_filter = ("status", "channel", "webhook")
    list_select_related = ("webhook",)
    search_fields = ("target",)
    date_hierarchy = "created_at"
    actions = ("retry_selected",)
    inlines = (AttemptInline,)
    fields = (
        "alert",
        "channel",
        "target",
        "webhook",
        "email",
        "event",
        "status",
        "attempt_count",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "delivered_at",
        "created_at",
        "payload_display",
    )
    readonly_fields = fields

    has_retry_permission = _perm("retry_delivery")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Delivery) -> str:
        return _badge(obj.status, obj.get_status_display(), STATUS_COLOURS)

    @admin.display(description="alert", ordering="alert")
    def alert_link(self, obj: Delivery) -> str:
        url = reverse("admin:health_alert_change", args=[obj.alert_id])
        return format_html('<a href="{}">#{}</a>', url, obj.alert_id)

    @admin.display(description="last error")
    def short_error(self, obj: Delivery) -> str:
        return (obj.last_error[:117] + "…") if len(obj.last_error) > 120 else obj.last_error

    @admin.display(description="body (webhooks: sent signed, as JSON)")
    def payload_display(self, obj: Delivery) -> str:
        body = alert_payload_of(obj.alert, obj.event)
        return format_html("<pre>{}</pre>", json.dumps(body, indent=2, ensure_ascii=False))

    @admin.action(description="Retry selected failed deliveries", permissions=["retry"])
    def retry_selected(self, request, queryset):
        count = deliveries_retry(delivery_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"{count} failed deliveries queued again.", messages.SUCCESS)
