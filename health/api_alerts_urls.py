"""/api/ routes of alerts: alert rules, alerts (acknowledge / resolve) and webhooks."""

from rest_framework.routers import SimpleRouter

from . import api_alerts

router = SimpleRouter()
router.register("alert-rules", api_alerts.AlertRuleViewSet, basename="alert-rule")
router.register("alerts", api_alerts.AlertViewSet, basename="alert")
router.register("webhooks", api_alerts.WebhookViewSet, basename="webhook")

urlpatterns = router.urls
