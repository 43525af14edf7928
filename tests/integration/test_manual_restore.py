"""The README's "Restore by hand" block, run as written: stock sha256sum, gpg, zstd, pg_restore."""

from __future__ import annotations

import os
import re
import subprocess

from ansible_collections.diagnosticpro.dr.plugins.module_utils import _dump, _pg
from tests.integration.helpers import checksums, symmetric

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def readme_block():
    text = open(os.path.join(REPO, "README.md")).read()
    block = re.search(r"<!-- manual-restore:start -->\s*```bash\n(.*?)```\s*<!-- manual-restore:end -->", text, re.S)
    assert block, "README.md lost its manual-restore block"
    return block.group(1)


def _run_block(pg, artifact, key, target, corrupt=False):
    script = readme_block()
    # The reader sets these three by hand; everything else runs exactly as printed.
    script = script.replace('ARTIFACT="$ID.dump.zst.gpg"', "ARTIFACT=%s" % artifact)
    script = script.replace("KEY=/etc/diagnosticpro/keys/backup-encryption.key", "KEY=%s" % key)
    script = script.replace("TARGET=diagnosticpro_restored", "TARGET=%s" % target)
    env = dict(
        os.environ,
        PGHOST=pg.host,
        PGPORT=str(pg.port),
        PGUSER=pg.superuser,
        PGPASSFILE=pg.passfile,
        PATH=_pg.bindir() + ":" + os.environ["PATH"],
    )
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=os.path.dirname(artifact),
        check=False,
    )


def test_readme_manual_restore(pg, source_db, conn, keys, dest, fresh_db_name):
    backup = _dump.dump(conn, source_db["name"], dest, symmetric(keys)[0])
    run = _run_block(pg, backup["path"], keys["passphrase_file"], fresh_db_name)
    assert run.returncode == 0, run.stdout + run.stderr
    assert ": OK" in run.stdout
    assert checksums(pg, fresh_db_name) == source_db["checksums"]


def test_readme_manual_restore_stops_on_a_corrupt_copy(pg, source_db, conn, keys, dest, fresh_db_name):
    backup = _dump.dump(conn, source_db["name"], dest, symmetric(keys)[0])
    with open(backup["path"], "r+b") as handle:
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 1]))
    run = _run_block(pg, backup["path"], keys["passphrase_file"], fresh_db_name)
    assert run.returncode != 0
    assert "FAILED" in run.stdout + run.stderr
    assert fresh_db_name not in pg.psql("SELECT datname FROM pg_database")
