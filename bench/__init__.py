"""Reproducible benchmarks: the company runbook vs pg_dump's limit vs pgBackRest vs this collection.

``python -m bench --sizes 1024,3072`` (``make bench``) starts its own PostgreSQL cluster and
GCS emulators in a temp dir, loads the sandbox dataset at each size, runs every case in a
child process whose process tree is sampled for memory, and writes ``docs/benchmarks.md``
(the generated section) and raw JSON under ``bench/results/``.
"""

from __future__ import annotations

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The library is imported as the installed collection, through the checkout's link.
COLLECTIONS = os.path.join(REPO, ".collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
