"""The test server's URLs for the analytics.js test: the project's, plus a customer's page.

The page stands for a site that self-hosts Segment's bundle (served here from the folder
``scripts/ensure_analytics_js.sh`` fills). The bundle's lazily loaded chunks would be asked
for at ``<cdnURL>/analytics-next/bundles/``: they are deliberately not served, so the test
shows that the settings this install answers need none of them.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.http import FileResponse, Http404, HttpResponse
from django.urls import path

from planhat_segment.urls import urlpatterns as project_urlpatterns

BUNDLE_DIR = Path(os.environ.get("ANALYTICS_NEXT_DIR", "var/vendor/analytics-next/1.84.3"))

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>A customer's site</title></head>
<body><h1>Pricing</h1>
<script src="/site/analytics-next.js"></script>
<script>
  // Configured ONLY with the browser key and cdnURL: the settings come from this install.
  var params = new URLSearchParams(location.search);
  var analytics = AnalyticsNext.AnalyticsBrowser.load({
    writeKey: params.get("key"),
    cdnURL: location.origin,
  });
  window.sent = (async function () {
    await analytics.identify("u-browser", {
      email: "bea@acme.example", name: "Bea Browser", company_id: "ACME",
    });
    await analytics.track("Pricing Viewed", { plan: "pro" });
    return "sent";
  })();
</script></body></html>
"""


def site_page(request):
    return HttpResponse(PAGE)


def bundle_file(request):
    file = BUNDLE_DIR / "index.js"
    if not file.is_file():
        raise Http404("index.js")
    return FileResponse(file.open("rb"), content_type="application/javascript")


urlpatterns = [
    path("site/", site_page),
    path("site/analytics-next.js", bundle_file),
    *project_urlpatterns,
]
