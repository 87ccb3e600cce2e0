"""Turning inbox rows into data: claim (claim.py), read (parse.py), decide (matching.py),
write (outputs.py), and one claim end to end (pipeline.py). Entry points are in
``usage.services``."""
