"""The Segment ingest side: authenticate, read, validate and store raw events (DESIGN.md §4.1).

Plain Django views on purpose: DRF's parsers, 415s and CSRF checks turn normal Segment
deliveries into permanent 4xx losses (DESIGN.md §7).
"""
