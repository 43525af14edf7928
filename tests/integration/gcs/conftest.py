"""Fixtures for the GCS layer: a client of the session emulator with short retries, a
per-test folder in the shared buckets, and a private emulator for destructive tests."""

from __future__ import annotations

import secrets
import shutil
import tempfile

import pytest

from ansible_collections.diagnosticpro.dr.plugins.module_utils import _gcs
from sandbox.services import FakeGCSServer


@pytest.fixture()
def workdir():
    path = tempfile.mkdtemp(prefix="dr-test-gcs-art-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture()
def prefix():
    """Each test in its own folder of the shared session buckets."""
    return "t-%s/database/" % secrets.token_hex(4)


@pytest.fixture()
def client(gcs):
    return _gcs.connect(endpoint=gcs.endpoint, timeout=10, retry_deadline=5)


@pytest.fixture()
def own_gcs(buckets):
    """A private emulator for tests that stop it or touch its files."""
    base = tempfile.mkdtemp(prefix="dr-test-owngcs-", dir="/tmp")
    server = FakeGCSServer(base, buckets=[b["name"] for b in buckets]).start()
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)
