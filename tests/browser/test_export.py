"""Export CSV beside a list downloads the list as filtered (issue 12)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from planhat_segment.models import Company, EndUser

pytestmark = pytest.mark.django_db(transaction=True)


def test_export_downloads_the_filtered_rows(logged_in_page):
    page = logged_in_page
    acme = Company.objects.create(name="Acme Corp", external_id="ACME")
    globex = Company.objects.create(name="Globex", external_id="GLOBEX")
    EndUser.objects.create(company=acme, email="ana@acme.example", external_id="U-1")
    EndUser.objects.create(company=acme, email="bo@acme.example", external_id="U-2")
    EndUser.objects.create(company=globex, email="cy@globex.example", external_id="U-3")

    page.goto("/admin/planhat_segment/enduser/")
    page.fill("#searchbar", "acme.example")
    with page.expect_navigation():
        page.locator("#searchbar").press("Enter")
    with page.expect_download() as download_info:
        page.get_by_test_id("export-csv").click()
    download = download_info.value
    assert download.suggested_filename.startswith(
        "enduser-"
    ) and download.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
    assert sorted(r["email"] for r in rows) == ["ana@acme.example", "bo@acme.example"]
    assert {r["company__external_id"] for r in rows} == {"ACME"}
