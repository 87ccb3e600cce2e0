"""Forms of the integration page: input translation only; rules live in the model's clean()."""

from __future__ import annotations

from django import forms

from planhat_segment.models import SYNCABLE_MODELS

from .models import IntegrationSettings, MetricDefinition, validate_metric_key


class UserTrackingForm(forms.ModelForm):
    # render_value: a secret typed into a form that failed for another field is kept (it is
    # only ever echoed back to the person who typed it; a fresh form has none to show).
    shared_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=True, attrs={"autocomplete": "new-password"}),
        help_text="Leave blank to keep the current secret.",
    )
    clear_shared_secret = forms.BooleanField(required=False, label="Remove the shared secret")

    class Meta:
        model = IntegrationSettings
        fields = [
            "user_tracking_enabled",
            "create_endusers",
            "match_by_email_domain",
            "unassigned_wait_hours",
        ]

    def changes(self) -> dict:
        data = {f: self.cleaned_data[f] for f in self.Meta.fields}
        if self.cleaned_data["clear_shared_secret"]:
            data["shared_secret"] = ""
        elif self.cleaned_data["shared_secret"]:
            data["shared_secret"] = self.cleaned_data["shared_secret"]
        return data


class CompanyMetricsForm(forms.ModelForm):
    class Meta:
        model = IntegrationSettings
        fields = ["company_metrics_enabled"]

    def changes(self) -> dict:
        return {"company_metrics_enabled": self.cleaned_data["company_metrics_enabled"]}


class MetricDefinitionForm(forms.ModelForm):
    key = forms.CharField(max_length=128, validators=[validate_metric_key])

    class Meta:
        model = MetricDefinition
        fields = ["key", "label", "description"]
        widgets = {"description": forms.TextInput()}


class WarehouseForm(forms.ModelForm):
    write_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=True, attrs={"autocomplete": "new-password"}),
        help_text="Leave blank to keep the current write key.",
    )
    # Not required here: the model's clean() says in words that one is needed.
    synced_models = forms.MultipleChoiceField(
        choices=[(name, name.capitalize()) for name in SYNCABLE_MODELS],
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    class Meta:
        model = IntegrationSettings
        fields = ["warehouse_enabled", "region", "custom_base_url", "synced_models"]

    def _post_clean(self) -> None:
        # The model's clean() needs the write key that will be saved: the new one, or the kept one.
        if self.cleaned_data.get("write_key"):
            self.instance.write_key = self.cleaned_data["write_key"]
        super()._post_clean()

    def changes(self) -> dict:
        data = {f: self.cleaned_data[f] for f in self.Meta.fields}
        if self.cleaned_data["write_key"]:
            data["write_key"] = self.cleaned_data["write_key"]
        return data
