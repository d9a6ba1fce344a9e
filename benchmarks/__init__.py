"""`make bench`: measurements of the package at scale (see run.py and harness.py)."""
