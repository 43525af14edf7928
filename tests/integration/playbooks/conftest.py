"""Run the playbooks as an operator would: ansible-playbook, a generated inventory, real services.

Each test gets its own database (loaded with the sandbox dataset), its own object prefix in
the shared buckets and its own local backup directory, so tests neither see nor clean up
each other's backups.
"""

from __future__ import annotations

import http.server
import os
import secrets
import subprocess
import threading

import pytest
import yaml

from sandbox import datagen
from sandbox.fake_k8s import FakeKubeAPIServer, workload

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.join(REPO, ".venv", "bin")


class Env:
    """One test's world: database, inventory, and a way to run a playbook against it."""

    def __init__(self, pg, gcs, buckets, keys, base):
        self.pg = pg
        self.gcs = gcs
        self.buckets = buckets
        self.base = base
        self.db = "dr_pb_" + secrets.token_hex(3)
        self.prefix = "pbtest-%s/" % secrets.token_hex(3)
        self.backup_dir = os.path.join(base, "backups")
        self.inventory = os.path.join(base, "inventory.yml")
        self.vars = {
            "dr_db_host": pg.host,
            "dr_db_port": pg.port,
            "dr_db_name": self.db,
            "dr_db_user": pg.superuser,
            "dr_db_password_file": pg.passfile,
            "dr_passphrase_file": keys["passphrase_file"],
            "dr_buckets": buckets,
            "dr_gcs_prefix": self.prefix,
            "dr_gcs_endpoint": gcs.endpoint,
            "dr_backup_dir": self.backup_dir,
            "dr_retention_days": 7,
            "dr_backup_tier": "tier1",
        }
        self.write_inventory()

    def write_inventory(self, **extra):
        hostvars = {"ansible_connection": "local", "ansible_python_interpreter": os.path.join(BIN, "python")}
        with open(self.inventory, "w") as handle:
            yaml.safe_dump(
                {
                    "all": {
                        "hosts": {"localhost": hostvars},
                        "vars": dict(self.vars, **extra),
                        "children": {"backup_hosts": {"hosts": {"localhost": None}}},
                    }
                },
                handle,
            )

    def playbook(self, name, *args):
        """Run playbooks/<name>.yml; return (rc, combined output)."""
        env = dict(
            os.environ,
            ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
            ANSIBLE_FORCE_COLOR="0",
            ANSIBLE_NOCOLOR="1",
            PATH=BIN + os.pathsep + os.environ["PATH"],
        )
        playbook = os.path.join(REPO, "playbooks", name + ".yml")
        proc = subprocess.run(
            [os.path.join(BIN, "ansible-playbook"), "-i", self.inventory, playbook, *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        return proc.returncode, proc.stdout + proc.stderr

    def ok(self, name, *args):
        rc, out = self.playbook(name, *args)
        assert rc == 0, out
        return out

    # -- the database ---------------------------------------------------------------
    def connect(self, dbname=None):
        return self.pg.connect(dbname or self.db)

    def checksums(self):
        conn = self.connect()
        try:
            return datagen.table_checksums(conn)
        finally:
            conn.close()

    def sql(self, statement, dbname=None):
        return self.pg.psql(statement, dbname or self.db)

    def databases(self):
        return self.pg.psql("SELECT datname FROM pg_database ORDER BY 1").split()

    def local_files(self):
        return sorted(os.listdir(self.backup_dir)) if os.path.isdir(self.backup_dir) else []


@pytest.fixture
def env(pg, gcs, buckets, keys, tmp_path):
    world = Env(pg, gcs, buckets, keys, str(tmp_path))
    pg.psql("CREATE DATABASE %s" % world.db)
    datagen.load(pg.conninfo(world.db), 1)
    yield world
    for name in world.databases():
        if name == world.db or name.startswith(world.db + "_"):
            pg.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)


class _Health(http.server.BaseHTTPRequestHandler):
    """The application's /health: 200 only while every replica of the API is ready."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        app = self.server.k8s.get("apps/v1", "Deployment", APP, NAMESPACE)
        ready = app["status"].get("readyReplicas", 0) if app else 0
        self.send_response(200 if ready and ready == app["spec"]["replicas"] else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


APP = "diagnosticpro-api"
NAMESPACE = "diagnosticpro"


@pytest.fixture
def k8s_app(env, tmp_path):
    """A fake cluster running the API with 3 replicas, and its health endpoint; wired into the inventory."""
    server = FakeKubeAPIServer(str(tmp_path / "fake-k8s")).start()
    server.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    server.apply(workload("Deployment", APP, 3, {"app": APP}, NAMESPACE, None))
    health = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    health.k8s = server
    thread = threading.Thread(target=health.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    env.vars.update(
        dr_k8s_kubeconfig=server.kubeconfig,
        dr_k8s_namespace=NAMESPACE,
        dr_app_workloads=[{"kind": "Deployment", "name": APP}],
        dr_app_health_url="http://127.0.0.1:%d/health" % health.server_address[1],
        pg_restore_app_health_delay=1,
        pg_restore_app_wait_timeout=60,
    )
    env.write_inventory()
    yield server
    health.shutdown()
    health.server_close()
    server.stop()
