"""/api/ routes of health."""

from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("health-profiles", api.HealthProfileViewSet, basename="health-profile")
router.register("health-scores", api.HealthScoreViewSet, basename="health-score")

urlpatterns = router.urls
