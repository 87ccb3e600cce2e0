"""Alert rules and alerts: validation, rule writes, set-based evaluation, people's actions."""

from .actions import (
    AlertStateError,
    alert_acknowledge,
    alert_resolve,
    alerts_acknowledge,
    alerts_resolve,
)
from .evaluate import EvaluationSummary, RuleOutcome, alerts_evaluate
from .rules import (
    alert_rule_create,
    alert_rule_delete,
    alert_rule_saved,
    alert_rule_update,
    webhook_create,
    webhook_delete,
    webhook_update,
)

__all__ = [
    "AlertStateError",
    "EvaluationSummary",
    "RuleOutcome",
    "alert_acknowledge",
    "alert_resolve",
    "alert_rule_create",
    "alert_rule_delete",
    "alert_rule_saved",
    "alert_rule_update",
    "alerts_acknowledge",
    "alerts_evaluate",
    "alerts_resolve",
    "webhook_create",
    "webhook_delete",
    "webhook_update",
]
