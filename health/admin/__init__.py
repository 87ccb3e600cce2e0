"""Admin of health: profiles with their factors, score history, and the company list's
health columns (the Company admin re-registered from health's side); alerts, rules,
webhooks and deliveries (``alerts``)."""

from . import alerts, companies, profiles, scores  # noqa: F401  (registrations)
