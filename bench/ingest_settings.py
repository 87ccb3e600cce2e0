"""Settings for the ingest benchmark's gunicorn: the project's, plus the bare baseline views."""

from planhat_segment.settings import *  # noqa: F403

ROOT_URLCONF = "bench.ingest_baseline"
