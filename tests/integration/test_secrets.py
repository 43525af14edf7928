"""No secret in output: a backup, upload, verification and restore run through ansible-playbook
-vvv, while every process's command line is sampled; neither the encryption passphrase nor
the database password may appear in any output, log, manifest, artifact listing or argv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import yaml

from tests.integration.helpers import ls

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _sample_cmdlines(stop, seen):
    while not stop.is_set():
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as handle:
                    seen.add(handle.read())
                with open("/proc/%s/environ" % pid, "rb") as handle:
                    seen.add(handle.read())
            except OSError:
                continue
        time.sleep(0.005)


def test_no_secret_in_output_logs_manifests_or_argv(pg, source_db, keys, gcs, buckets, dest, tmp_path, fresh_db_name):
    progress = str(tmp_path / "progress.log")
    common = {"host": pg.host, "port": pg.port, "user": pg.superuser, "password_file": pg.passfile}
    gcs_auth = {"endpoint": gcs.endpoint}
    playbook = [
        {
            "name": "Secrets stay secret",
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Back up",
                    "register": "__backup",
                    "diagnosticpro.dr.pg_encrypted_dump": dict(
                        common,
                        database=source_db["name"],
                        dest=dest,
                        passphrase_file=keys["passphrase_file"],
                        progress_file=progress,
                        label="secrets",
                    ),
                },
                {
                    "name": "Upload",
                    "register": "__upload",
                    "diagnosticpro.dr.gcs_backup_upload": dict(
                        gcs_auth, src="{{ __backup.path }}", buckets=buckets, prefix="secrets/"
                    ),
                },
                {
                    "name": "Verify",
                    "diagnosticpro.dr.backup_verify": dict(
                        common,
                        **gcs_auth,
                        backup="{{ __upload.uploads[0].url }}",
                        passphrase_file=keys["passphrase_file"],
                        progress_file=progress,
                        record=True,
                    ),
                },
                {
                    "name": "Restore",
                    "diagnosticpro.dr.pg_encrypted_restore": dict(
                        common,
                        **gcs_auth,
                        backup="{{ __upload.uploads | map(attribute='url') | list }}",
                        database=fresh_db_name,
                        passphrase_file=keys["passphrase_file"],
                        progress_file=progress,
                    ),
                },
            ],
        }
    ]
    path = tmp_path / "secrets.yml"
    path.write_text(yaml.safe_dump(playbook, sort_keys=False))
    log = str(tmp_path / "ansible.log")
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
        ANSIBLE_LOG_PATH=log,
        ANSIBLE_KEEP_REMOTE_FILES="0",
        ANSIBLE_NOCOLOR="1",
    )
    stop, seen = threading.Event(), set()
    sampler = threading.Thread(target=_sample_cmdlines, args=(stop, seen), daemon=True)
    sampler.start()
    try:
        run = subprocess.run(
            [
                os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                "-vvv",
                "-i",
                "localhost,",
                "-c",
                "local",
                "-e",
                "ansible_python_interpreter=%s" % sys.executable,
                str(path),
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=600,
            check=False,
        )
    finally:
        stop.set()
        sampler.join()
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert len(seen) > 20, "the sampler saw too few processes to prove anything"
    assert any(b"--passphrase-fd" in c for c in seen), "the sampler never saw gpg run"

    secrets = {"passphrase": keys["passphrase"], "db password": pg.password}
    texts = {
        "stdout": run.stdout,
        "stderr": run.stderr,
        "ansible log": open(log).read(),
        "progress": open(progress).read(),
    }
    for name in ls(dest):
        if name.endswith(".json"):
            texts["manifest " + name] = open(os.path.join(dest, name)).read()
    texts["gcs log"] = open(gcs.log_file).read()
    for what, secret in secrets.items():
        for where, text in texts.items():
            assert secret not in text, "the %s appears in %s" % (what, where)
        for blob in seen:
            assert secret.encode() not in blob, "the %s appears in a process's argv or environment" % what
    assert "Restore" in run.stdout and "changed=" in run.stdout
    json.loads(open(os.path.join(dest, [n for n in ls(dest) if n.endswith(".manifest.json")][0])).read())
