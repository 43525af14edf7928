"""``python -m sandbox up|status|down`` as a developer runs it, on its own directory and ports
so that it never touches a sandbox the developer has running."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request

import psycopg2
import pytest

from sandbox import cli
from sandbox.services import free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


@pytest.fixture(scope="module")
def sandbox():
    base = tempfile.mkdtemp(prefix="dr-test-sandbox-", dir="/tmp")
    os.chmod(base, 0o711)  # noqa: S103 - the PostgreSQL OS user must traverse it
    root = os.path.join(base, "s")
    ports = {"pg": free_port(), "gcs": free_port(), "k8s": free_port(), "health": free_port()}
    args = [
        "--dir",
        root,
        "--pg-port",
        str(ports["pg"]),
        "--gcs-port",
        str(ports["gcs"]),
        "--k8s-port",
        str(ports["k8s"]),
        "--health-port",
        str(ports["health"]),
    ]

    def run(command, *extra):
        return subprocess.run(
            [sys.executable, "-m", "sandbox", command, *args, *extra],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    first = run("up", "--size-mb", "8")
    try:
        yield {"root": root, "ports": ports, "run": run, "first": first}
    finally:
        run("down", "--purge")
        shutil.rmtree(base, ignore_errors=True)


def state(sandbox):
    with open(os.path.join(sandbox["root"], "state.json")) as handle:
        return json.load(handle)


def test_up_starts_everything_and_survives_its_process(sandbox):
    assert sandbox["first"].returncode == 0, sandbox["first"].stderr
    assert "Sandbox is up" in sandbox["first"].stdout and "loaded" in sandbox["first"].stdout
    st = state(sandbox)
    assert st["postgres"]["port"] == sandbox["ports"]["pg"]
    assert st["gcs"]["endpoint"] == "http://127.0.0.1:%d" % sandbox["ports"]["gcs"]
    assert st["k8s"]["port"] == sandbox["ports"]["k8s"]
    assert [b["region"] for b in st["gcs"]["buckets"]] == ["us-central1", "us-east1", "europe-west1"]
    # The `up` process has exited: both services must still answer.
    url = st["gcs"]["endpoint"] + "/storage/v1/b?project=sandbox"
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - http://127.0.0.1 from our state
        names = {item["name"] for item in json.load(resp)["items"]}
    assert names == {b["name"] for b in cli.BUCKETS}


def test_app_role_owns_the_loaded_database_and_is_no_superuser(sandbox):
    pg = state(sandbox)["postgres"]
    conn = psycopg2.connect(
        host=pg["host"], port=pg["port"], user=pg["user"], dbname=pg["database"], passfile=pg["passfile"]
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT rolsuper, rolcreatedb FROM pg_roles WHERE rolname = current_user")
            assert cur.fetchone() == (False, True)
            cur.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")
            assert cur.fetchone() == (cli.APP_ROLE,)
            cur.execute("SELECT count(*) FROM customers")
            assert cur.fetchone()[0] == pg["dataset"]["rows"]["customers"]
    finally:
        conn.close()


def test_secrets_are_private_files(sandbox):
    st = state(sandbox)
    for path in (
        st["postgres"]["passfile"],
        st["postgres"]["superuser_passfile"],
        st["keys"]["passphrase_file"],
        st["keys"]["secret_key_file"],
    ):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    assert stat.S_IMODE(os.stat(st["keys"]["gnupg_home"]).st_mode) == 0o700
    assert len(st["keys"]["fingerprint"]) == 40
    with open(st["keys"]["public_key_file"]) as handle:
        assert "BEGIN PGP PUBLIC KEY BLOCK" in handle.read()
    with open(os.path.join(sandbox["root"], "state.json")) as handle:
        text = handle.read()
    with open(st["postgres"]["passfile"]) as handle:
        assert handle.read().strip().rsplit(":", 1)[1] not in text


def test_second_up_is_quick_and_changes_nothing(sandbox):
    before = state(sandbox)["postgres"]["dataset"]
    started = time.monotonic()
    again = sandbox["run"]("up", "--size-mb", "8")
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - started < 15
    assert "already running" in again.stdout and "already loaded" in again.stdout
    assert state(sandbox)["postgres"]["dataset"] == before


def test_other_size_needs_reload(sandbox):
    result = sandbox["run"]("up", "--size-mb", "9")
    assert result.returncode == 1 and "--reload" in result.stderr


def test_status_reports_health(sandbox):
    result = sandbox["run"]("status")
    assert result.returncode == 0 and result.stdout.count("running") >= 2
    report = json.loads(sandbox["run"]("status", "--json").stdout)
    assert report["health"] == {"postgres": True, "gcs": True, "k8s": True, "app_health": True}


def test_application_is_up_and_healthy(sandbox):
    """The fake cluster runs diagnosticpro-api at 3 replicas and the health endpoint sees it and the database."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(state(sandbox)["app_health_url"], timeout=2) as resp:  # noqa: S310
                body = json.loads(resp.read())
                break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert body["status"] == "ok" and "3 replicas ready" in body["detail"]


def test_inventory_points_at_the_sandbox(sandbox):
    """inventories/sandbox resolves, through SANDBOX_* overrides, to the files `up` made."""
    st = state(sandbox)
    env = dict(
        os.environ,
        SANDBOX_DIR=sandbox["root"],
        SANDBOX_PG_PORT=str(sandbox["ports"]["pg"]),
        SANDBOX_GCS_PORT=str(sandbox["ports"]["gcs"]),
        ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
    )
    wanted = (
        "dr_db_port",
        "dr_db_user",
        "dr_db_password_file",
        "dr_passphrase_file",
        "dr_secret_key_file",
        "dr_gcs_endpoint",
        "dr_backup_dir",
        "sandbox_backup_recipient",
    )
    msg = "{{ {%s} | to_json }}" % ", ".join("'%s': %s" % (name, name) for name in wanted)
    result = subprocess.run(
        [
            os.path.join(BIN, "ansible"),
            "-i",
            os.path.join(REPO, "inventories", "sandbox"),
            "localhost",
            "-m",
            "ansible.builtin.debug",
            "-a",
            "msg=" + msg,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    task = json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    resolved = task["msg"] if isinstance(task["msg"], dict) else json.loads(task["msg"])
    assert int(resolved["dr_db_port"]) == st["postgres"]["port"]
    assert resolved["dr_db_user"] == st["postgres"]["user"]
    assert resolved["dr_db_password_file"] == st["postgres"]["passfile"]
    assert resolved["dr_passphrase_file"] == st["keys"]["passphrase_file"]
    assert resolved["dr_secret_key_file"] == st["keys"]["secret_key_file"]
    assert resolved["dr_gcs_endpoint"] == st["gcs"]["endpoint"]
    assert resolved["dr_backup_dir"] == st["backup_dir"]
    assert resolved["sandbox_backup_recipient"] == st["keys"]["fingerprint"]


def test_down_stops_and_keeps_then_purge_removes(sandbox):
    down = sandbox["run"]("down")
    assert down.returncode == 0, down.stderr
    assert sandbox["run"]("status").returncode == 1
    assert os.path.exists(os.path.join(sandbox["root"], "pg", "data", "PG_VERSION"))
    back = sandbox["run"]("up", "--size-mb", "8")
    assert back.returncode == 0 and "already loaded" in back.stdout, back.stderr
    purge = sandbox["run"]("down", "--purge")
    assert purge.returncode == 0, purge.stderr
    assert not os.path.exists(sandbox["root"])
