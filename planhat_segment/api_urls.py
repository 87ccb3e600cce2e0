"""/api/ routes of the workspace's objects."""

from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("companies", api.CompanyViewSet, basename="company")
router.register("endusers", api.EndUserViewSet, basename="enduser")
router.register("assets", api.AssetViewSet, basename="asset")
router.register("projects", api.ProjectViewSet, basename="project")
router.register("licenses", api.LicenseViewSet, basename="license")

urlpatterns = router.urls
