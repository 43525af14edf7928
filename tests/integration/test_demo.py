"""`make demo` as a new user runs it (on a private sandbox directory and ports): backup, verify,
simulated data loss, recovery with the application scaled down and back, and the summary."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from sandbox.services import free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_demo_end_to_end():
    base = tempfile.mkdtemp(prefix="dr-test-demo-", dir="/tmp")
    os.chmod(base, 0o711)  # noqa: S103 - the PostgreSQL OS user must traverse it
    root = os.path.join(base, "s")
    env = dict(
        os.environ,
        SANDBOX_DIR=root,
        SANDBOX_PG_PORT=str(free_port()),
        SANDBOX_GCS_PORT=str(free_port()),
        SANDBOX_K8S_PORT=str(free_port()),
        SANDBOX_HEALTH_PORT=str(free_port()),
        ANSIBLE_NOCOLOR="1",
        PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
    )
    try:
        run = subprocess.run(
            [sys.executable, "-m", "sandbox", "demo", "--size-mb", "8"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        summary = run.stdout[run.stdout.index("== Summary") :]
        for line in ("backup ", "data loss", "recovery", "verified", "application"):
            assert line in summary
        assert "went down to 0" in summary
    finally:
        subprocess.run(
            [sys.executable, "-m", "sandbox", "down", "--purge"], cwd=REPO, env=env, capture_output=True, check=False
        )
        shutil.rmtree(base, ignore_errors=True)
