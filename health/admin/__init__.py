"""Admin of health: profiles with their factors, score history, and the company list's
health columns (the Company admin re-registered from health's side)."""

from . import companies, profiles, scores  # noqa: F401  (registrations)
