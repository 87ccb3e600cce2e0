"""The Segment integration admin page (placeholder until the page is built)."""

from django.http import HttpResponse


def integration_page(request):
    return HttpResponse("Segment integration")


def extra_urls(site) -> list:
    return []
