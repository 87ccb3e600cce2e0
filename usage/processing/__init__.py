"""Turning inbox rows into data, in stages that only ever import earlier ones: claim
(claim.py), read (parse.py), load (load.py), decide (matching.py), write (write.py), and
one claim end to end (pipeline.py). ``policy.py`` holds the rules about time (retries, the
unassigned-user window). Entry points are in ``usage.services``."""
