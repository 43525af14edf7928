"""The three playbooks end to end, as an on-call engineer runs them.

backup -> verify -> simulated data loss -> recover, against real PostgreSQL, fake-gcs-server
and gpg, through ansible-playbook with a generated inventory. Also: the recovery refuses a
non-empty target without pg_restore_clean, and the local retention deletes only this
collection's own expired copies (and nothing in check mode).
"""

from __future__ import annotations

import glob
import json
import os
import time

import pytest

ARTIFACT_GLOB = "*.dump.zst.gpg"


def artifacts(env):
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(env.backup_dir, ARTIFACT_GLOB)))


def backup(env):
    """Run the backup playbook; return the new backup id."""
    before = set(artifacts(env))
    out = env.ok("backup_database")
    new = sorted(set(artifacts(env)) - before)
    assert len(new) == 1, out
    return new[0][: -len(".dump.zst.gpg")], out


@pytest.fixture
def fast(env):
    """Poll the async tasks every second: the test data takes a second to dump, not fifteen."""
    env.vars.update(pg_backup_poll_interval=1, backup_verify_poll_interval=1, pg_restore_poll_interval=1)
    env.write_inventory()
    return env


def test_backup_end_to_end(fast):
    env = fast
    backup_id, out = backup(env)
    artifact = os.path.join(env.backup_dir, backup_id + ".dump.zst.gpg")
    with open(artifact + ".manifest.json") as handle:
        manifest = json.load(handle)
    assert manifest["backup_id"] == backup_id
    # Every regional bucket holds the artifact and its manifest.
    for bucket in env.buckets:
        for name in (backup_id + ".dump.zst.gpg", backup_id + ".dump.zst.gpg.manifest.json"):
            assert os.path.exists(env.gcs.object_path(bucket["name"], env.prefix + name)), (bucket, name)
    # The summary names what an operator needs.
    tertiary_url = "gs://%s/%s%s" % (env.buckets[2]["name"], env.prefix, backup_id)
    sha256 = manifest["artifact"]["sha256"]
    for needle in ("sha256: " + sha256, tertiary_url, "newest restorable backup is " + backup_id):
        assert needle in out, needle
    assert oct(os.stat(env.backup_dir).st_mode & 0o777) == "0o700"

    # Check mode: the preflight and the plan, nothing dumped or uploaded.
    out = env.ok("backup_database", "--check")
    assert "Check mode: would dump " + env.db in out
    assert artifacts(env) == [backup_id + ".dump.zst.gpg"]


def test_backup_preflight_refuses_a_readable_key_file(fast, tmp_path):
    env = fast
    leaky = tmp_path / "leaky.key"
    leaky.write_text("passphrase\n")
    leaky.chmod(0o644)
    env.vars["dr_passphrase_file"] = str(leaky)
    env.write_inventory()
    rc, out = env.playbook("backup_database")
    assert rc != 0
    assert "chmod 600 " + str(leaky) in out
    assert artifacts(env) == []


@pytest.mark.slow
def test_verify_latest_backup_and_catch_a_broken_one(fast):
    env = fast
    good, _unused = backup(env)
    out = env.ok("verify_backup")
    assert "Backup %s verified" % good in out
    assert "customers_without_email: 0" in out

    # A customer without an email passes pg_dump but fails the runbook's check.
    env.sql("INSERT INTO customers (email, name, country) VALUES ('', 'No Mail', 'US')")
    bad, _unused = backup(env)
    rc, out = env.playbook("verify_backup")
    assert rc != 0, out
    assert "Backup %s did NOT verify" % bad in out
    assert "customers_without_email" in out

    # An explicitly named older backup still verifies.
    out = env.ok("verify_backup", "-e", "backup_verify_backup=" + good)
    assert "Backup %s verified" % good in out


@pytest.mark.slow
def test_recover_after_data_loss(fast):
    env = fast
    backup_id, _unused = backup(env)
    env.ok("verify_backup")  # the recovery restores the newest *verified* backup
    before = env.checksums()

    env.sql("DELETE FROM payment_transactions WHERE id % 2 = 0")
    env.sql("DELETE FROM user_sessions")
    damaged = env.checksums()
    assert damaged != before

    # Check mode: the assessment and the plan, nothing changed.
    out = env.ok("recover_database", "--check", "-e", "pg_restore_clean=true")
    assert "Check mode: would snapshot %s" % env.db in out
    assert "restore %s into %s" % (backup_id, env.db) in out
    assert env.checksums() == damaged
    assert not [d for d in env.databases() if d.startswith(env.db + "_pre_")]

    out = env.ok("recover_database", "-e", "pg_restore_clean=true")
    assert env.checksums() == before
    assert "restored: %s into %s" % (backup_id, env.db) in out
    assert "passes all 4 consistency checks" in out
    # The damaged state was snapshotted and the replaced database kept.
    snapshots = glob.glob(os.path.join(env.backup_dir, "pre-restore", "*.gpg"))
    assert len(snapshots) == 1 and snapshots[0] in out
    assert [d for d in env.databases() if d.startswith(env.db + "_pre_")]


def test_recover_refuses_non_empty_target_without_clean(fast):
    env = fast
    env.sql("DELETE FROM user_sessions WHERE id % 3 = 0")
    damaged = env.checksums()
    databases = env.databases()

    rc, out = env.playbook("recover_database")
    assert rc != 0
    assert "Refusing to restore: database %s" % env.db in out
    assert "-e pg_restore_clean=true" in out
    assert "Nothing was changed" in out
    assert env.checksums() == damaged
    assert env.databases() == databases
    assert not os.path.exists(os.path.join(env.backup_dir, "pre-restore"))


def _touch(path, days_old):
    with open(path, "w") as handle:
        handle.write("x")
    then = time.time() - days_old * 86400
    os.utime(path, (then, then))


def test_retention_deletes_only_own_expired_copies(fast):
    env = fast
    os.makedirs(env.backup_dir, mode=0o700)
    d = env.backup_dir

    def own(stamp, hexid):
        return "%s-%s-%s.dump.zst.gpg" % (env.db, stamp, hexid)

    expired = [own("20261101T000000Z", "aaaaaa"), own("20261102T000000Z", "bbbbbb")]
    young = own("20261201T000000Z", "cccccc")
    for name, age in ((expired[0], 30), (expired[1], 20), (young, 2)):
        _touch(os.path.join(d, name), age)
        _touch(os.path.join(d, name + ".manifest.json"), age)
    foreign = {
        own("20261103T000000Z", "dddddd"): 25,  # no manifest: maybe still being written
        own("20261104T000000Z", "eeeeee") + ".manifest.json": 25,  # manifest without its artifact
        own("20261105T000000Z", "ffffff") + ".partial": 25,  # not an artifact name
        "otherdb-20261101T000000Z-abcdef.dump.zst.gpg": 30,  # another label
        "otherdb-20261101T000000Z-abcdef.dump.zst.gpg.manifest.json": 30,
        "notes.txt": 30,
    }
    for name, age in foreign.items():
        _touch(os.path.join(d, name), age)
    everything = sorted(os.listdir(d))

    out = env.ok("backup_database", "--tags", "retention", "--check")
    assert "Would delete 2 of 3 local copies" in out
    for name in expired:
        assert name in out
    assert sorted(os.listdir(d)) == everything

    out = env.ok("backup_database", "--tags", "retention")
    assert "Deleting 2 of 3 local copies" in out
    kept = sorted(os.listdir(d))
    assert kept == sorted(set(everything) - {n + s for n in expired for s in ("", ".manifest.json")})

    # Never the newest: with every own copy expired, the newest one stays.
    os.unlink(os.path.join(d, young))
    os.unlink(os.path.join(d, young + ".manifest.json"))
    _touch(os.path.join(d, expired[0]), 30)
    _touch(os.path.join(d, expired[0] + ".manifest.json"), 30)
    _touch(os.path.join(d, expired[1]), 20)
    _touch(os.path.join(d, expired[1] + ".manifest.json"), 20)
    out = env.ok("backup_database", "--tags", "retention")
    assert "Deleting 1 of 2 local copies" in out
    assert os.path.exists(os.path.join(d, expired[1]))
    assert not os.path.exists(os.path.join(d, expired[0]))
    for name in foreign:
        assert os.path.exists(os.path.join(d, name))


def _replicas(k8s):
    return k8s.get("apps/v1", "Deployment", "diagnosticpro-api", "diagnosticpro")["spec"]["replicas"]


@pytest.mark.slow
def test_recover_scales_the_application_around_the_restore(fast, k8s_app):
    env = fast
    backup_id, _unused = backup(env)
    before = env.checksums()
    env.sql("DELETE FROM audit_log")

    out = env.ok("recover_database", "-e", "pg_restore_clean=true", "-e", "pg_restore_backup=" + backup_id)
    assert env.checksums() == before
    assert _replicas(k8s_app) == 3
    # Down before the snapshot and the restore, back up (to the recorded count) and healthy after.
    order = [
        out.index(marker)
        for marker in (
            "Scale the application to zero",
            "Snapshot the current state and restore the backup",
            "Scale the application back to its recorded replica counts",
            "Wait for the application to report healthy",
            "Summarise the recovery",
        )
    ]
    assert order == sorted(order)
    assert "from start to a healthy application" in out


@pytest.mark.slow
def test_recover_failure_reports_the_snapshot_and_restarts_the_application(fast, k8s_app):
    env = fast
    backup_id, _unused = backup(env)
    # A damaged copy (with its manifest) that the restore must reject.
    broken_dir = os.path.join(env.base, "broken")
    os.makedirs(broken_dir)
    name = backup_id + ".dump.zst.gpg"
    with open(os.path.join(env.backup_dir, name), "rb") as handle:
        data = bytearray(handle.read())
    data[len(data) // 2] ^= 0xFF
    with open(os.path.join(broken_dir, name), "wb") as handle:
        handle.write(data)
    with (
        open(os.path.join(env.backup_dir, name + ".manifest.json")) as src,
        open(os.path.join(broken_dir, name + ".manifest.json"), "w") as dst,
    ):
        dst.write(src.read())
    env.sql("DELETE FROM audit_log")
    damaged = env.checksums()

    def snapshots():
        return sorted(glob.glob(os.path.join(env.backup_dir, "pre-restore", "*.gpg")))

    rc, out = env.playbook(
        "recover_database", "-e", "pg_restore_clean=true", "-e", "pg_restore_backup=" + os.path.join(broken_dir, name)
    )
    assert rc != 0
    assert 'Recovery of %s FAILED at "Snapshot the current state and restore the backup"' % env.db in out
    taken = snapshots()
    assert ("saved in " + taken[0] in out) if taken else ("No pre-restore snapshot was taken" in out)
    assert env.checksums() == damaged  # the target was never swapped
    assert _replicas(k8s_app) == 3  # and the application is back

    # A failure after the swap (a consistency check that cannot pass): the message names the
    # snapshot of the state before the restore and the kept database.
    checks = json.dumps({"backup_verify_checks": [{"name": "always_fails", "sql": "SELECT 1"}]})
    rc, out = env.playbook(
        "recover_database", "-e", "pg_restore_clean=true", "-e", "pg_restore_backup=" + backup_id, "-e", checks
    )
    assert rc != 0
    assert 'Recovery of %s FAILED at "Assert that every check passed"' % env.db in out
    assert "always_fails (rows: 1)" in out
    new = sorted(set(snapshots()) - set(taken))
    assert len(new) == 1 and "saved in " + new[0] in out
    assert "kept as %s_pre_" % env.db in out
    assert _replicas(k8s_app) == 3
