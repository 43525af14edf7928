"""Run one case in a child process while sampling its process tree and the new PostgreSQL backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from . import REPO
from .procs import PeakSampler

# Generous: the slowest case (the runbook's restore of 3 GB) takes minutes, not an hour.
CASE_TIMEOUT_S = 3600


class Runner:
    def __init__(self, env):
        self.env = env
        self.count = 0

    def run(self, name, **spec):
        """The case's result dict, with ``peak_rss``; ``{"error": ...}`` if the case failed (never raises)."""
        self.count += 1
        stem = os.path.join(self.env.work, "case-%02d-%s" % (self.count, name))
        spec = dict(self.env.case_spec(), case=os.path.basename(stem), **spec)
        with open(stem + ".spec.json", "w") as handle:
            json.dump(spec, handle)
        # Every case starts with clean shared buffers: no checkpoint lands in the middle of a dump.
        self.env.query("CHECKPOINT")
        sampler = PeakSampler(self.env.postmaster_pid())
        # Its own session, so a hung or interrupted case can be killed with everything it started.
        child = subprocess.Popen(
            [sys.executable, "-m", "bench.cases", name, stem + ".spec.json", stem + ".out.json"],
            cwd=REPO,
            start_new_session=True,
        )
        try:
            with sampler.watching(child.pid):
                code = child.wait(timeout=CASE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return {
                "error": "%s timed out after %d s (stderr of its commands in %s.stderr)" % (name, CASE_TIMEOUT_S, stem)
            }
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        if code:
            return {"error": "%s exited %d (traceback above; stderr of its commands in %s.stderr)" % (name, code, stem)}
        with open(stem + ".out.json") as handle:
            result = json.load(handle)
        result.update(peak_rss=sampler.peak, rss_samples=sampler.samples)
        return result
