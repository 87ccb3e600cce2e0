"""`make bench`: performance measured against same-run baselines (see README)."""
