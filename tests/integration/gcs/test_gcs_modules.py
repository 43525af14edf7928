"""The two modules run as an operator runs them, in a playbook: check mode, apply, apply
again, then the real effect in the buckets."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.diagnosticpro.dr.plugins.module_utils import _manifest
from sandbox.services import free_port
from tests.integration.gcs.gcs_helpers import MIB, names, write_backup

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)


def run_tasks(tmp_path, *tasks):
    """Run ``tasks`` ((module, args, check_mode) triples) as one playbook on localhost, the way
    an operator would, and return each task's result. One ansible-playbook start for all."""
    play = [
        {
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "tasks": [
                {"name": "task %d" % i, "diagnosticpro.dr." + module: args, "check_mode": check, "ignore_errors": True}
                for i, (module, args, check) in enumerate(tasks)
            ],
        }
    ]
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps(play))  # JSON is YAML
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_NOCOLOR="1",
    )
    proc = subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", str(playbook)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = json.loads(proc.stdout)
    return [task["hosts"]["localhost"] for task in output["plays"][0]["tasks"]]


@pytest.fixture()
def auth(gcs):
    return {"endpoint": gcs.endpoint, "retry_deadline": 5}


def test_upload_check_apply_apply_again(tmp_path, auth, buckets, workdir, prefix, client):
    path, doc = write_backup(workdir, 9 * MIB)  # above the multipart limit: the staged path
    args = dict(auth, src=path, buckets=buckets, prefix=prefix, storage_class="NEARLINE", chunk_size_mb=4)
    info_args = dict(auth, buckets=buckets, prefix=prefix, database="appdb")

    planned, applied, again, info = run_tasks(
        tmp_path,
        ("gcs_backup_upload", args, True),
        ("gcs_backup_upload", args, False),
        ("gcs_backup_upload", args, False),
        ("gcs_backup_info", info_args, True),
    )

    assert planned.get("failed") is not True, planned.get("msg")
    assert planned["changed"] is True
    assert [(u["action"], u["verified"]) for u in planned["uploads"]] == [("upload", False)] * 3

    assert applied["changed"] is True and applied["backup_id"] == doc["backup_id"]
    assert [(u["verified"], u["crc32c"]) for u in applied["uploads"]] == [(True, doc["artifact"]["crc32c"])] * 3
    artifact = prefix + doc["artifact"]["name"]
    for entry in buckets:
        assert names(client, entry["name"], prefix) == [artifact, artifact + _manifest.MANIFEST_SUFFIX]
    # The emulator drops the storage class of resumable uploads; the module says so.
    assert any("not the requested NEARLINE" in w for w in applied.get("warnings", []))

    assert again["changed"] is False
    assert [u["action"] for u in again["uploads"]] == ["none"] * 3
    assert [u["generation"] for u in again["uploads"]] == [u["generation"] for u in applied["uploads"]]

    assert info["changed"] is False and info["errors"] == []
    assert info["selected"]["backup_id"] == doc["backup_id"]
    assert info["candidates"] == ["gs://%s/%s" % (b["name"], artifact) for b in buckets]


def test_check_mode_writes_nothing(tmp_path, auth, buckets, workdir, prefix, client):
    path, _unused = write_backup(workdir, 64 * 1024)
    (planned,) = run_tasks(tmp_path, ("gcs_backup_upload", dict(auth, src=path, buckets=buckets, prefix=prefix), True))
    assert planned["changed"] is True
    assert all(names(client, b["name"], prefix) == [] for b in buckets)


def test_refusal_is_a_clear_failure_and_info_fails_only_when_no_bucket_answers(
    tmp_path, auth, buckets, workdir, prefix
):
    path, doc = write_backup(os.path.join(workdir, "a"), 64 * 1024)
    other, _unused = write_backup(os.path.join(workdir, "b"), 65 * 1024, backup_id=doc["backup_id"])
    down = {"endpoint": "http://127.0.0.1:%d" % free_port(), "retry_deadline": 1, "timeout": 2}
    first, refused, replaced, unreachable = run_tasks(
        tmp_path,
        ("gcs_backup_upload", dict(auth, src=path, buckets=buckets[:1], prefix=prefix), False),
        ("gcs_backup_upload", dict(auth, src=other, buckets=buckets[:1], prefix=prefix), False),
        ("gcs_backup_upload", dict(auth, src=other, buckets=buckets[:1], prefix=prefix, overwrite="different"), False),
        ("gcs_backup_info", dict(down, buckets=buckets[:1], prefix=prefix), True),
    )
    assert first["changed"] is True
    assert refused["failed"] is True and refused["changed"] is False
    assert "a different object already exists" in refused["msg"] and "overwrite=different" in refused["msg"]
    assert refused["uploads"][0]["action"] == "refuse"
    assert replaced["changed"] is True and replaced["uploads"][0]["action"] == "replace"

    assert unreachable["failed"] is True
    assert "Failed to list backups in any bucket" in unreachable["msg"] and down["endpoint"] in unreachable["msg"]
    assert unreachable["errors"][0]["bucket"] == buckets[0]["name"]
