"""The workspace's own objects: companies, endusers, assets, projects, licenses.

Conventions every model keeps (DESIGN.md §4.2, §7):
- a missing external id is stored as NULL under a plain unique constraint, so bulk upserts
  can use it as their ON CONFLICT target;
- ``updated_at`` is ``auto_now`` for ordinary saves; bulk writes set it themselves;
- a deletion leaves a :class:`Tombstone` for the warehouse push (see
  ``services/tombstones.py``): deletes go through :class:`WorkspaceQuerySet` or
  ``WorkspaceObject.delete``, which write the tombstones of the whole delete, cascades
  included, in bulk inside its transaction.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models, router, transaction
from django.db.models import Q
from django.utils import timezone


def blank_to_none(value: str | None) -> str | None:
    """External ids and emails: an empty or blank string means "not set" (NULL)."""
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _tombstones_collected(using: str):
    from .services.tombstones import tombstones_collected  # the services import these models

    return tombstones_collected(using=using)


class WorkspaceQuerySet(models.QuerySet):
    def delete(self):
        """Delete (cascades included) and write every tombstone in one go, atomically."""
        with transaction.atomic(using=self.db), _tombstones_collected(self.db):
            return super().delete()

    delete.alters_data = True
    delete.queryset_only = True


class WorkspaceObject(models.Model):
    """Fields shared by every workspace object."""

    external_id = models.CharField(
        max_length=255,
        null=True,
        blank=True,
        unique=True,
        help_text="The object's id in your own systems (Segment userId / groupId).",
    )
    custom = models.JSONField(default=dict, blank=True, help_text="Custom fields, as stored.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        abstract = True

    def delete(self, using=None, keep_parents=False):
        """Delete (cascades included) and write every tombstone in one go, atomically."""
        db = using or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=db), _tombstones_collected(db):
            return super().delete(using=using, keep_parents=keep_parents)

    def clean(self) -> None:
        self.external_id = blank_to_none(self.external_id)
        if not isinstance(self.custom, dict):
            raise ValidationError({"custom": "Custom fields must be a JSON object."})

    def save(self, *args, **kwargs) -> None:
        self.external_id = blank_to_none(self.external_id)
        super().save(*args, **kwargs)


class Company(WorkspaceObject):
    name = models.CharField(max_length=255)
    is_test = models.BooleanField(
        default=False,
        help_text="Test data (from 'Send test event'): left out of charts and pushes.",
    )
    owner_email = models.EmailField(
        "owner email",
        max_length=254,
        blank=True,
        default="",
        db_default="",  # raw bulk inserts (COPY, bulk upserts) that do not name it get ""
        help_text="Who looks after this company: alert rules may notify this address.",
    )

    class Meta:
        verbose_name_plural = "companies"
        ordering = ["name", "id"]
        # The few test companies, read by each claim's rollups (``usage.rollups``).
        indexes = [models.Index(fields=["id"], condition=Q(is_test=True), name="company_test")]

    def __str__(self) -> str:
        return self.name

    @property
    def email_domains(self) -> list[str]:
        return [d.domain for d in self.domains.all()]


class CompanyDomain(models.Model):
    """An email domain that identifies one company (used when an event names no company)."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(max_length=255, unique=True)

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain

    def save(self, *args, **kwargs) -> None:
        self.domain = normalize_domain(self.domain)
        super().save(*args, **kwargs)


def normalize_domain(domain: str) -> str:
    return domain.strip().lower().lstrip("@").rstrip(".")


class EndUser(WorkspaceObject):
    class Source(models.TextChoices):
        MANUAL = "manual", "Manual"
        SEGMENT = "segment", "Segment"
        API = "api", "API"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="endusers")
    email = models.EmailField(max_length=254, null=True, blank=True)
    # Lower-case copy under a plain unique constraint: case-insensitive uniqueness that bulk
    # upserts can target (an expression index on Lower(email) cannot be an ON CONFLICT target).
    email_normalized = models.CharField(max_length=254, null=True, unique=True, editable=False)
    first_name = models.CharField(max_length=150, blank=True, default="")
    last_name = models.CharField(max_length=150, blank=True, default="")
    name = models.CharField(max_length=255, blank=True, default="")
    title = models.CharField(max_length=255, blank=True, default="")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MANUAL)
    is_test = models.BooleanField(
        default=False,
        help_text="Test data (from 'Send test event'): left out of charts and pushes.",
    )

    class Meta:
        verbose_name = "enduser"
        ordering = ["name", "id"]
        # The few test endusers, read by each claim's rollups (``usage.rollups``).
        indexes = [models.Index(fields=["id"], condition=Q(is_test=True), name="enduser_test")]
        constraints = [
            models.CheckConstraint(
                condition=Q(external_id__isnull=False) | Q(email_normalized__isnull=False),
                name="enduser_has_external_id_or_email",
                violation_error_message="An enduser needs an external id or an email.",
            )
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        full = f"{self.first_name} {self.last_name}".strip()
        return self.name or full or self.email or self.external_id or f"enduser {self.pk}"

    def clean(self) -> None:
        super().clean()
        self.email = blank_to_none(self.email)
        if not self.external_id and not self.email:
            raise ValidationError("An enduser needs an external id or an email.")

    def save(self, *args, **kwargs) -> None:
        self.email = blank_to_none(self.email)
        self.email_normalized = self.email.lower() if self.email else None
        super().save(*args, **kwargs)


class Asset(WorkspaceObject):
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="assets")
    name = models.CharField(max_length=255)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Project(WorkspaceObject):
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=255)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class License(WorkspaceObject):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PENDING = "pending", "Pending"
        CHURNED = "churned", "Churned"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="licenses")
    product = models.CharField(max_length=255)
    mrr = models.DecimalField("MRR", max_digits=14, decimal_places=2, default=Decimal("0"))
    currency = models.CharField(max_length=3, default="USD")
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)

    class Meta:
        ordering = ["-start_date", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=models.F("start_date")),
                name="license_ends_after_it_starts",
                violation_error_message="A license cannot end before it starts.",
            ),
            models.CheckConstraint(
                condition=Q(mrr__gte=0),
                name="license_mrr_not_negative",
                violation_error_message="MRR cannot be negative.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product} ({self.company_id})"

    def clean(self) -> None:
        super().clean()
        self.currency = (self.currency or "").upper()
        if len(self.currency) != 3 or not self.currency.isalpha():
            raise ValidationError({"currency": "Use a three-letter ISO 4217 code, e.g. USD."})


class Tombstone(models.Model):
    """What is left of a deleted object, for the warehouse push's "<Model> Deleted" event."""

    model = models.CharField(max_length=32, db_index=True)
    object_pk = models.BigIntegerField()
    external_id = models.CharField(max_length=255, null=True, blank=True)
    company_pk = models.BigIntegerField(null=True, blank=True)
    company_external_id = models.CharField(max_length=255, null=True, blank=True)
    deleted_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-deleted_at"]
        indexes = [models.Index(fields=["model", "object_pk"])]

    def __str__(self) -> str:
        return f"{self.model} {self.object_pk} deleted {self.deleted_at:%Y-%m-%d %H:%M}"


# The models whose objects the warehouse push sends, by their lower-case name.
SYNCABLE_MODELS: dict[str, type[WorkspaceObject]] = {
    "company": Company,
    "enduser": EndUser,
    "license": License,
    "asset": Asset,
    "project": Project,
}
