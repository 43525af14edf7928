"""Every failure path ends in a clear error and an intact system: nothing passes as a backup,
and a failed restore never touches the target."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

from ansible_collections.diagnosticpro.dr.plugins.module_utils import _crypto, _dump, _gcs, _manifest, _restore
from ansible_collections.diagnosticpro.dr.plugins.module_utils._errors import (
    ConfigError,
    DecryptError,
    DumpError,
    EncryptError,
    IntegrityError,
    KeyFileError,
    RestoreError,
)
from tests.integration.helpers import checksums, databases, kill_when_running, ls, symmetric


def _private(path, content):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    return path


def _assert_no_backup(dest):
    leftovers = [f for f in ls(dest) if not f.startswith(".")]
    assert leftovers == [], "a failed backup left files behind: %s" % leftovers


# -- the backup side --------------------------------------------------------------------


@pytest.mark.parametrize("victim", ["pg_dump", "gpg"])
def test_stage_killed_midway_leaves_nothing(source_db, conn, keys, dest, victim):
    encryption, _unused = symmetric(keys)
    marker = {"pg_dump": "--snapshot=", "gpg": "--symmetric"}[victim]
    thread, killed = kill_when_running(victim, marker)
    error = EncryptError if victim == "gpg" else DumpError
    with pytest.raises(error) as info:
        _dump.dump(conn, source_db["name"], dest, encryption)
    thread.join()
    assert killed, "%s was never seen running" % victim
    assert "%s was killed by SIGKILL" % victim in str(info.value)
    assert "partial file" in str(info.value)
    _assert_no_backup(dest)


def test_bad_database_name(conn, keys, dest):
    with pytest.raises(ConfigError, match='database "no_such_db" does not exist'):
        _dump.dump(conn, "no_such_db", dest, symmetric(keys)[0])
    _assert_no_backup(dest)


def test_gpg_failing_on_unknown_recipient(source_db, conn, dest):
    encryption = _crypto.Encryption(recipients=["nobody@example.invalid"])
    with pytest.raises(ConfigError, match="Failed to find public key for nobody@example.invalid"):
        _dump.dump(conn, source_db["name"], dest, encryption)
    _assert_no_backup(dest)


def test_missing_and_loose_key_files_refused(source_db, conn, dest, tmp_path):
    with pytest.raises(KeyFileError, match="does not exist"):
        _dump.dump(conn, source_db["name"], dest, _crypto.Encryption(passphrase_file=str(tmp_path / "nope.key")))
    loose = _private(str(tmp_path / "loose.key"), "hunter2-hunter2\n")
    os.chmod(loose, 0o644)
    with pytest.raises(KeyFileError, match=r"accessible by group or others \(mode 0644\).*chmod 600"):
        _dump.dump(conn, source_db["name"], dest, _crypto.Encryption(passphrase_file=loose))
    with pytest.raises(KeyFileError, match="accessible by group or others"):
        _crypto.Decryption(passphrase_file=loose).preflight({"mode": "symmetric"})
    _assert_no_backup(dest)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_disk_full_for_local_copy(source_db, conn, keys):
    mount = tempfile.mkdtemp(prefix="dr-test-full-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", mount], check=True)
    try:
        with pytest.raises(DumpError, match="no space left on device writing .*%s" % mount):
            _dump.dump(conn, source_db["name"], mount, symmetric(keys)[0], compression="none")
        _assert_no_backup(mount)
    finally:
        subprocess.run(["umount", mount], check=True)
        os.rmdir(mount)


def test_check_mode_writes_nothing(source_db, conn, keys, dest):
    result = _dump.dump(conn, source_db["name"], dest, symmetric(keys)[0], check_mode=True)
    assert result["changed"] and result["path"].startswith(dest)
    _assert_no_backup(dest)


# -- the restore side -------------------------------------------------------------------


@pytest.fixture(scope="module")
def uploaded(source_db, pg, keys, buckets, gcs):
    """One good backup in all three buckets."""
    from ansible_collections.diagnosticpro.dr.plugins.module_utils import _pg

    conn = _pg.Conn(host=pg.host, port=pg.port, user=pg.superuser, password_file=pg.passfile)
    out = tempfile.mkdtemp(prefix="dr-test-uploaded-")
    backup = _dump.dump(conn, source_db["name"], out, symmetric(keys)[0], label="failures")
    client = _gcs.connect(endpoint=gcs.endpoint)
    result = _gcs.upload_backup(client, backup["path"], buckets, prefix="failures/")
    yield dict(backup, urls=[u["url"] for u in result["uploads"]], dir=out)
    shutil.rmtree(out, ignore_errors=True)


@pytest.fixture()
def corrupt_copy(uploaded, gcs, tmp_path):
    """A local artifact+manifest pair with one byte of the artifact flipped."""
    path = str(tmp_path / os.path.basename(uploaded["path"]))
    with open(uploaded["path"], "rb") as handle:
        data = bytearray(handle.read())
    data[len(data) // 2] ^= 0x01
    with open(path, "wb") as handle:
        handle.write(data)
    shutil.copy(uploaded["manifest_path"], _manifest.manifest_name(path))
    return path


def test_flipped_byte_refused_by_verify_and_restore(pg, conn, keys, corrupt_copy, fresh_db_name):
    decryption = symmetric(keys)[1]
    before = databases(pg)
    with pytest.raises(IntegrityError, match="corrupt or incomplete"):
        _restore.verify(conn, corrupt_copy, decryption)
    with pytest.raises(RestoreError, match="corrupt or incomplete") as info:
        _restore.restore(conn, corrupt_copy, fresh_db_name, decryption)
    assert "%s is unchanged" % fresh_db_name in str(info.value)
    assert databases(pg) == before, "a scratch or staging database was left behind"


def test_flipped_byte_in_stored_object_falls_back_to_next_region(
    pg, conn, keys, uploaded, gcs, gcs_opts, fresh_db_name, source_db
):
    bucket, name = _gcs.parse_url(uploaded["urls"][0])
    stored = gcs.object_path(bucket, name)
    with open(stored, "r+b") as handle:
        handle.seek(os.path.getsize(stored) // 3)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))
    try:
        decryption = symmetric(keys)[1]
        with pytest.raises(IntegrityError):
            _restore.verify(conn, [uploaded["urls"][0]], decryption, gcs=gcs_opts)
        result = _restore.restore(conn, uploaded["urls"], fresh_db_name, decryption, gcs=gcs_opts)
        assert result["source"] == uploaded["urls"][1]
        assert result["attempts"][0]["source"] == uploaded["urls"][0]
        assert "Failed to" in result["attempts"][0]["error"]
        assert checksums(pg, fresh_db_name) == source_db["checksums"]
    finally:
        with open(stored, "r+b") as handle:  # put the byte back for the other tests
            handle.seek(os.path.getsize(stored) // 3)
            handle.write(byte)


def test_wrong_passphrase(pg, conn, uploaded, tmp_path, fresh_db_name):
    wrong = _crypto.Decryption(passphrase_file=_private(str(tmp_path / "wrong.key"), "not the key\n"))
    with pytest.raises(DecryptError, match="not the key this backup was made with"):
        _restore.verify(conn, uploaded["path"], wrong)
    # Without a key id in the manifest (made by other tooling), gpg itself says no.
    copy = str(tmp_path / os.path.basename(uploaded["path"]))
    shutil.copy(uploaded["path"], copy)
    doc = _manifest.read(uploaded["manifest_path"])
    del doc["encryption"]["key_id"]
    _manifest.write(doc, _manifest.manifest_name(copy))
    before = databases(pg)
    with pytest.raises(RestoreError, match="wrong passphrase or key"):
        _restore.restore(conn, copy, fresh_db_name, wrong)
    assert databases(pg) == before


def test_restore_refuses_non_empty_target_without_clean(pg, conn, keys, uploaded, fresh_db_name):
    pg.psql("CREATE DATABASE %s" % fresh_db_name)
    pg.psql("CREATE TABLE precious (id int); INSERT INTO precious VALUES (42)", fresh_db_name)
    with pytest.raises(RestoreError, match=r"not empty \(1 tables\).*clean: true"):
        _restore.restore(conn, uploaded["path"], fresh_db_name, symmetric(keys)[1])
    assert pg.psql("SELECT id FROM precious", fresh_db_name).strip() == "42"


def test_clean_restore_keeps_previous_and_snapshot(pg, conn, keys, uploaded, fresh_db_name, source_db, dest):
    pg.psql("CREATE DATABASE %s" % fresh_db_name)
    pg.psql("CREATE TABLE precious (id int); INSERT INTO precious VALUES (42)", fresh_db_name)
    encryption, decryption = symmetric(keys)
    result = _restore.restore(
        conn, uploaded["path"], fresh_db_name, decryption, clean=True, snapshot={"dest": dest, "encryption": encryption}
    )
    assert checksums(pg, fresh_db_name) == source_db["checksums"]
    previous = result["previous_database"]
    assert previous.startswith(fresh_db_name + "_pre_")
    assert pg.psql("SELECT id FROM precious", previous).strip() == "42"
    snap = _manifest.read(result["snapshot"]["manifest_path"])
    assert list(snap["tables"]) == ["public.precious"]
    assert snap["tables"]["public.precious"]["rows"] == 1 and snap["tables"]["public.precious"]["bytes"] > 0


def test_restore_refuses_while_sessions_are_connected(pg, conn, keys, uploaded, fresh_db_name):
    pg.psql("CREATE DATABASE %s" % fresh_db_name)
    app = pg.connect(fresh_db_name)
    try:
        with pytest.raises(RestoreError, match="other sessions are connected.*scaled_down"):
            _restore.restore(conn, uploaded["path"], fresh_db_name, symmetric(keys)[1], clean=True)
    finally:
        app.close()


def test_gcs_server_down_during_restore_is_a_clear_error(pg, conn, keys, uploaded, fresh_db_name):
    # An endpoint nobody listens on: the same as the server being down.
    gcs_down = {"endpoint": "http://127.0.0.1:9", "retry_deadline": 2.0, "timeout": 2.0}
    before = databases(pg)
    with pytest.raises(RestoreError, match="127.0.0.1:9"):
        _restore.restore(conn, uploaded["urls"][:1], fresh_db_name, symmetric(keys)[1], gcs=gcs_down)
    assert databases(pg) == before


def test_manifest_that_cannot_be_written_leaves_no_artifact(source_db, conn, keys, dest, monkeypatch):
    # The manifest's name is taken by a directory: the write fails after the artifact is complete.
    real_plan = _dump.plan

    def plan_and_block(*args, **kwargs):
        planned = real_plan(*args, **kwargs)
        os.mkdir(_manifest.manifest_name(planned["path"]))
        return planned

    monkeypatch.setattr(_dump, "plan", plan_and_block)
    with pytest.raises(DumpError, match="Failed to write the manifest.*artifact .* was removed"):
        _dump.dump(conn, source_db["name"], dest, symmetric(keys)[0])
    assert [f for f in ls(dest) if not f.endswith(".manifest.json")] == []
