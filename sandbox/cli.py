"""``python -m sandbox up|down|status``: the local stand-in for production.

Everything lives under one directory (``.sandbox/`` in the checkout unless ``--dir``):

    pg/                 PostgreSQL cluster (run as an unprivileged OS user), port 55432
    gcs/                fake-gcs-server with the three regional buckets, port 54443
    secrets/            pgpass (application role), pgpass-postgres (superuser),
                        backup-encryption.key, gnupg/ + backup-public.asc + backup-secret.asc
    backups/            local on-site copies (dr_backup_dir)
    k8s/                kubeconfig of the fake Kubernetes API server
    state.json          ports, paths and what was loaded, for scripts and ``status``

Ports are fixed so that ``inventories/sandbox`` can name them; override them (and the
directory) with options or ``SANDBOX_*`` environment variables to run a second sandbox,
as the tests do. ``up`` is idempotent: running services are left alone and the dataset is
loaded only once per size. ``down`` keeps the data unless ``--purge``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time

from sandbox import datagen
from sandbox.services import DEFAULT_OS_USER, BackgroundService, FakeGCSServer, PostgresCluster

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATABASE = "diagnosticpro"
APP_ROLE = "diagnosticpro_app"
# Primary, secondary, tertiary: the order the backup modules try them in.
BUCKETS = (
    {"name": "diagnosticpro-backups-us-central1", "region": "us-central1"},
    {"name": "diagnosticpro-backups-us-east1", "region": "us-east1"},
    {"name": "diagnosticpro-backups-europe-west1", "region": "europe-west1"},
)
GPG_UID = "DiagnosticPro Sandbox Backup Key <backup-sandbox@diagnosticpro.invalid>"
STATE_VERSION = 1


class SandboxError(Exception):
    """Printed as one line with what to do next; exit status 1."""


# ---------------------------------------------------------------------------- files


def _write_private(path, content, mode=0o600):
    """Write ``content`` to ``path`` atomically, created with ``mode`` (never briefly wider)."""
    tmp = "%s.tmp%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w" if isinstance(content, str) else "wb") as handle:
        handle.write(content)
    os.replace(tmp, path)
    return path


def _traversable(path, user):
    """Can ``user`` reach ``path``? (A checkout under /root is not reachable by anyone else.)"""
    if os.geteuid() != 0:
        return True  # PostgreSQL runs as the caller then
    return subprocess.run(["runuser", "-u", user, "--", "test", "-x", path], check=False).returncode == 0


def _pg_home(root):
    """Where the sandbox cluster lives: ``<root>/pg`` if the PostgreSQL OS user can reach it,
    else a directory of its own under /var/tmp, named after the sandbox (and linked from it)."""
    inside = os.path.join(root, "pg")
    parent = os.path.dirname(root)
    if os.path.islink(inside) or _traversable(parent if not os.path.exists(root) else root, DEFAULT_OS_USER):
        return os.path.realpath(inside) if os.path.islink(inside) else inside
    outside = os.path.join("/var/tmp", "diagnosticpro-dr-sandbox-%s" % hashlib.sha256(root.encode()).hexdigest()[:10])
    os.makedirs(outside, mode=0o711, exist_ok=True)
    os.makedirs(root, exist_ok=True)
    os.symlink(os.path.join(outside, "pg"), inside)
    print("Note: %s is not reachable by the %s user; the cluster lives in %s" % (root, DEFAULT_OS_USER, outside))
    return os.path.join(outside, "pg")


class Layout:
    """Paths and ports of one sandbox."""

    def __init__(self, root, pg_port, gcs_port, k8s_port, health_port=58080):
        self.root = os.path.abspath(root)
        self.pg_port, self.gcs_port, self.k8s_port = pg_port, gcs_port, k8s_port
        self.health_port = health_port
        self.pg_dir = _pg_home(self.root)
        self.gcs_dir = os.path.join(self.root, "gcs")
        self.secrets = os.path.join(self.root, "secrets")
        self.backups = os.path.join(self.root, "backups")
        self.k8s_dir = os.path.join(self.root, "k8s")
        self.state_file = os.path.join(self.root, "state.json")
        self.app_passfile = os.path.join(self.secrets, "pgpass")
        self.superuser_passfile = os.path.join(self.secrets, "pgpass-postgres")
        self.passphrase_file = os.path.join(self.secrets, "backup-encryption.key")
        self.gnupg_home = os.path.join(self.secrets, "gnupg")
        self.public_key_file = os.path.join(self.secrets, "backup-public.asc")
        self.secret_key_file = os.path.join(self.secrets, "backup-secret.asc")
        self.fingerprint_file = os.path.join(self.secrets, "backup-key.fpr")

    def cluster(self, port=None):
        # Room for a multi-GB load or restore between checkpoints (settings apply at initdb).
        return PostgresCluster(self.pg_dir, port=port or self.pg_port, settings={"max_wal_size": "4GB"})

    def gcs(self):
        return FakeGCSServer(self.gcs_dir, port=self.gcs_port, buckets=[b["name"] for b in BUCKETS])

    @property
    def kubeconfig(self):
        return os.path.join(self.k8s_dir, "kubeconfig")

    @property
    def health_url(self):
        return "http://127.0.0.1:%d/health" % self.health_port

    def k8s(self):
        """The fake Kubernetes API server, seeded with the diagnosticpro-api Deployment (3 replicas)."""
        return BackgroundService(
            "fake-k8s",
            self.k8s_dir,
            ["sandbox.fake_k8s", "--port", str(self.k8s_port), "--dir", self.k8s_dir, "--demo"],
            "http://127.0.0.1:%d/version" % self.k8s_port,
        )

    def app_health(self, pg_port):
        """The application's health endpoint: ready replicas in the fake cluster and a live database."""
        return BackgroundService(
            "app-health",
            self.root,
            [
                "sandbox.health",
                "--port",
                str(self.health_port),
                "--kubeconfig",
                self.kubeconfig,
                "--db-port",
                str(pg_port),
                "--db-user",
                APP_ROLE,
                "--passfile",
                self.app_passfile,
            ],
            self.health_url,
        )

    def read_state(self):
        try:
            with open(self.state_file) as handle:
                return json.load(handle)
        except FileNotFoundError:
            return {}

    def write_state(self, state):
        _write_private(self.state_file, json.dumps(state, indent=2, sort_keys=True) + "\n", 0o644)


@contextlib.contextmanager
def _locked(layout):
    """One ``up``/``down`` at a time per sandbox directory."""
    os.makedirs(layout.root, exist_ok=True)
    with open(os.path.join(layout.root, ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _port_in_use(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


# ---------------------------------------------------------------------------- PostgreSQL


def scram_verifier(password, salt=None, iterations=4096):
    """A SCRAM-SHA-256 verifier as PostgreSQL stores it, so the plaintext password never
    reaches the server (nor its log, should the statement fail)."""
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (
        iterations,
        *(base64.b64encode(part).decode() for part in (salt, stored_key, server_key)),
    )


def _start_postgres(layout, state):
    cluster = layout.cluster()
    conf = os.path.join(cluster.data_dir, "postgresql.auto.conf")
    if os.path.exists(conf):
        # initdb wrote the port into the cluster's configuration: it cannot follow an option.
        recorded = state.get("postgres", {}).get("port")
        if recorded and recorded != layout.pg_port:
            raise SandboxError(
                "Failed to start PostgreSQL: the cluster in %s was initialised on port %s, not %s; "
                "use --pg-port %s or `down --purge` first" % (layout.pg_dir, recorded, layout.pg_port, recorded)
            )
    if not cluster.is_running() and _port_in_use(layout.pg_port):
        raise SandboxError(
            "Failed to start PostgreSQL: port %d is already in use by another program; pass --pg-port "
            "or set SANDBOX_PG_PORT" % layout.pg_port
        )
    was_running = cluster.is_running()
    try:
        cluster.start()
    except subprocess.CalledProcessError as exc:
        raise SandboxError(
            "Failed to start PostgreSQL: %s; see %s"
            % ((exc.stderr or exc.stdout or str(exc)).strip().splitlines()[-1], cluster.log_file)
        ) from exc
    with open(cluster.passfile) as handle:  # a re-initialised cluster has a new superuser password
        _write_private(layout.superuser_passfile, handle.read())
    return cluster, was_running


def _ensure_app_role(cluster, layout):
    """The application role owns the database (not a superuser; CREATEDB so that restores
    can build a staging database next to it). Its password exists only in the passfile."""
    created = not os.path.exists(layout.app_passfile)
    if created:
        password = secrets.token_urlsafe(24)
    else:
        with open(layout.app_passfile) as handle:
            password = handle.read().strip().rsplit(":", 1)[1]
    # Rewritten every time: the cluster may have been re-initialised on another port.
    _write_private(layout.app_passfile, "%s:%d:*:%s:%s\n" % (cluster.host, cluster.port, APP_ROLE, password))
    from psycopg2 import sql

    conn = cluster.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,))
            exists = cur.fetchone() is not None
            if not exists or created:
                statement = (
                    "ALTER ROLE {} LOGIN NOSUPERUSER CREATEDB PASSWORD {}"
                    if exists
                    else "CREATE ROLE {} LOGIN NOSUPERUSER CREATEDB PASSWORD {}"
                )
                cur.execute(sql.SQL(statement).format(sql.Identifier(APP_ROLE), sql.Literal(scram_verifier(password))))
    finally:
        conn.close()


def _app_conninfo(cluster, layout, dbname=DATABASE):
    return {
        "host": cluster.host,
        "port": cluster.port,
        "user": APP_ROLE,
        "dbname": dbname,
        "passfile": layout.app_passfile,
    }


def _database_exists(cluster):
    conn = cluster.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
            return cur.fetchone() is not None
    finally:
        conn.close()


class _Progress:
    """Loading progress on stderr: a live line on a terminal, a line every few seconds in logs."""

    def __init__(self, stream=sys.stderr):
        self.stream, self.tty, self.last = stream, stream.isatty(), 0.0

    def __call__(self, table, rows, nbytes):
        now = time.monotonic()
        if now - self.last < (0.25 if self.tty else 5):
            return
        self.last = now
        line = "  loading %-24s %12s rows  %8.1f MB sent" % (table, format(rows, ","), nbytes / 1048576)
        self.stream.write(("\r" + line) if self.tty else (line + "\n"))
        self.stream.flush()

    def done(self, message):
        self.stream.write(("\r\033[K" if self.tty else "") + message + "\n")


def _ensure_dataset(cluster, layout, size_mb, seed, reload):
    """Create and load the database unless it already holds this size of dataset."""
    import psycopg2

    if _database_exists(cluster):
        conn = psycopg2.connect(**_app_conninfo(cluster, layout))
        try:
            info = datagen.loaded_info(conn)
            tables = datagen.row_counts(conn)
        finally:
            conn.close()
        if not reload:
            if info and info.get("size_mb") == size_mb and info.get("seed") == seed:
                return info, "already loaded"
            if info:
                raise SandboxError(
                    "Failed to load the dataset: %s already holds the %s MB dataset (seed %s); pass "
                    "--reload to replace it with %s MB" % (DATABASE, info["size_mb"], info["seed"], size_mb)
                )
            if tables:
                # For example a database a recovery drill restored: it is not ours to replace.
                return {"rows": tables}, "left as found (not loaded by the sandbox; --reload replaces it)"
        cluster.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % DATABASE)
    cluster.psql('CREATE DATABASE "%s" OWNER "%s"' % (DATABASE, APP_ROLE))
    started = time.monotonic()
    sys.stderr.write("Loading a %d MB dataset into %s (seed %d)...\n" % (size_mb, DATABASE, seed))
    progress = _Progress()
    datagen.load(_app_conninfo(cluster, layout), size_mb, seed=seed, progress=progress)
    conn = psycopg2.connect(**_app_conninfo(cluster, layout))
    try:
        info = datagen.loaded_info(conn)
        with conn.cursor() as cur:
            cur.execute("SELECT pg_database_size(current_database())")
            actual = cur.fetchone()[0] / 1048576
    finally:
        conn.close()
    elapsed = time.monotonic() - started
    progress.done("  loaded %.0f MB in %.1f s (%.1f MB/s)" % (actual, elapsed, actual / elapsed))
    return info, "loaded %.0f MB in %.1f s" % (actual, elapsed)


# ---------------------------------------------------------------------------- keys


def _ensure_keys(layout):
    """The symmetric passphrase and an OpenPGP key pair (no passphrase on the key: the
    secret key file itself is the secret, 0600)."""
    os.makedirs(layout.secrets, mode=0o700, exist_ok=True)
    os.chmod(layout.secrets, 0o700)
    if not os.path.exists(layout.passphrase_file):
        _write_private(layout.passphrase_file, secrets.token_urlsafe(48) + "\n")
    if os.path.exists(layout.fingerprint_file):
        with open(layout.fingerprint_file) as handle:
            return handle.read().strip()
    os.makedirs(layout.gnupg_home, mode=0o700, exist_ok=True)
    env = dict(os.environ, GNUPGHOME=layout.gnupg_home)

    def gpg(*argv, stdin=None):
        # --passphrase-fd 0 with empty stdin: an unprotected key, and no passphrase on argv.
        return subprocess.run(
            ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase-fd", "0", *argv],
            check=True,
            env=env,
            capture_output=True,
            input=b"",
        ).stdout

    try:
        gpg("--quick-generate-key", GPG_UID, "rsa3072", "encrypt,sign", "never")
        listing = gpg("--with-colons", "--list-keys", GPG_UID).decode()
        fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
        _write_private(layout.public_key_file, gpg("--armor", "--export", fingerprint), 0o644)
        _write_private(layout.secret_key_file, gpg("--armor", "--export-secret-keys", fingerprint))
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        raise SandboxError(
            "Failed to generate the sandbox OpenPGP key: %s %s" % (exc, detail.decode(errors="replace").strip())
        ) from exc
    _write_private(layout.fingerprint_file, fingerprint + "\n", 0o644)
    return fingerprint


def _stop_gpg_agent(layout):
    if os.path.isdir(layout.gnupg_home):
        subprocess.run(["gpgconf", "--homedir", layout.gnupg_home, "--kill", "all"], check=False, capture_output=True)


# ---------------------------------------------------------------------------- commands


SAMPLE_FILES = {
    # What backup_application.yml and backup_config.yml archive in the sandbox; the node_modules,
    # log and tmp entries are there to show the runbook's excludes at work.
    "app/diagnosticpro/server.js": "require('./src/app').listen(8080);\n",
    "app/diagnosticpro/src/app.js": "module.exports = require('express')();\n",
    "app/diagnosticpro/k8s/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\n"
    "metadata:\n  name: diagnosticpro-api\n",
    "app/diagnosticpro/node_modules/express/index.js": "module.exports = function () {};\n",
    "app/diagnosticpro/logs/api.log": "GET /health 200\n",
    "app/diagnosticpro/tmp/upload.part": "partial upload\n",
    "config/diagnosticpro.conf": "region = us-central1\nreport_bucket = diagnosticpro-reports\n",
    "config/nginx/diagnosticpro.conf": "server { listen 80; }\n",
}


def _ensure_sample_files(layout):
    for rel, content in SAMPLE_FILES.items():
        path = os.path.join(layout.root, rel)
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as handle:
                handle.write(content)


def cmd_up(layout, args):
    with _locked(layout):
        os.chmod(layout.root, 0o711)  # noqa: S103 - the PostgreSQL OS user must traverse it to reach pg/
        state = layout.read_state()
        fingerprint = _ensure_keys(layout)
        os.makedirs(layout.backups, mode=0o700, exist_ok=True)
        os.makedirs(layout.k8s_dir, mode=0o700, exist_ok=True)
        _ensure_sample_files(layout)
        cluster, pg_was_running = _start_postgres(layout, state)
        _ensure_app_role(cluster, layout)
        info, dataset_note = _ensure_dataset(cluster, layout, args.size_mb, args.seed, args.reload)
        gcs = layout.gcs()
        gcs_was_running = gcs.is_up()
        if not gcs_was_running and _port_in_use(layout.gcs_port):
            raise SandboxError(
                "Failed to start the GCS emulator: port %d is already in use by another program; pass "
                "--gcs-port or set SANDBOX_GCS_PORT" % layout.gcs_port
            )
        gcs.start()  # creates the buckets (already existing ones are kept)
        k8s = layout.k8s()
        k8s_was_running = k8s.is_up()
        if not k8s_was_running and _port_in_use(layout.k8s_port):
            raise SandboxError(
                "Failed to start the Kubernetes API double: port %d is in use; pass --k8s-port or set "
                "SANDBOX_K8S_PORT" % layout.k8s_port
            )
        k8s.start()
        layout.app_health(cluster.port).start()
        state = {
            "version": STATE_VERSION,
            "dir": layout.root,
            "postgres": {
                "host": cluster.host,
                "port": cluster.port,
                "database": DATABASE,
                "user": APP_ROLE,
                "passfile": layout.app_passfile,
                "superuser": cluster.superuser,
                "superuser_passfile": layout.superuser_passfile,
                "data_dir": cluster.data_dir,
                "log": cluster.log_file,
                "os_user": cluster.os_user,
                "dataset": info,
            },
            "gcs": {
                "endpoint": gcs.endpoint,
                "port": gcs.port,
                "buckets": list(BUCKETS),
                "root": gcs.root,
                "log": gcs.log_file,
            },
            "keys": {
                "passphrase_file": layout.passphrase_file,
                "gnupg_home": layout.gnupg_home,
                "fingerprint": fingerprint,
                "public_key_file": layout.public_key_file,
                "secret_key_file": layout.secret_key_file,
            },
            "backup_dir": layout.backups,
            "k8s": {
                "port": layout.k8s_port,
                "kubeconfig": layout.kubeconfig,
                "namespace": "diagnosticpro",
                "log": k8s.log_file,
            },
            "app_health_url": layout.health_url,
        }
        layout.write_state(state)
    print("Sandbox is up in %s" % _rel(layout.root))
    print(
        "  PostgreSQL    %s:%d  %s  database %s: %s"
        % (cluster.host, cluster.port, "already running" if pg_was_running else "started", DATABASE, dataset_note)
    )
    print("                user %s, passfile %s" % (APP_ROLE, _rel(layout.app_passfile)))
    print(
        "  GCS emulator  %s  %s  buckets %s"
        % (gcs.endpoint, "already running" if gcs_was_running else "started", ", ".join(b["name"] for b in BUCKETS))
    )
    print("  Keys          %s; OpenPGP %s (%s)" % (_rel(layout.passphrase_file), fingerprint, _rel(layout.gnupg_home)))
    print(
        "  Kubernetes    http://127.0.0.1:%d  %s  Deployment diagnosticpro/diagnosticpro-api, kubeconfig %s"
        % (layout.k8s_port, "already running" if k8s_was_running else "started", _rel(layout.kubeconfig))
    )
    print("  Health        %s" % layout.health_url)
    print("  Inventory     inventories/sandbox (state: %s)" % _rel(layout.state_file))
    return 0


def cmd_down(layout, args):
    if not os.path.isdir(layout.root):
        print("No sandbox in %s" % _rel(layout.root))
        return 0
    with _locked(layout):
        layout.app_health(0).stop()
        layout.k8s().stop()
        layout.gcs().stop()
        state = layout.read_state()
        cluster = layout.cluster(state.get("postgres", {}).get("port"))
        cluster.stop()
        _stop_gpg_agent(layout)
        if args.purge:
            # The lock file is inside: released when the directory goes, which is fine for a purge.
            if os.path.realpath(layout.pg_dir) != os.path.join(layout.root, "pg"):
                shutil.rmtree(os.path.dirname(layout.pg_dir), ignore_errors=True)  # the cluster kept outside
            shutil.rmtree(layout.root)
            print("Sandbox stopped and %s removed" % _rel(layout.root))
        else:
            print("Sandbox stopped; data kept in %s (`down --purge` removes it)" % _rel(layout.root))
    return 0


def health(layout):
    state = layout.read_state()
    if not state:
        return state, {}
    cluster = layout.cluster(state["postgres"]["port"])
    checks = {
        "postgres": cluster.is_running(),
        "gcs": layout.gcs().is_up(),
        "k8s": layout.k8s().is_up(),
        "app_health": layout.app_health(0).is_up(),
    }
    return state, checks


def cmd_status(layout, args):
    state, checks = health(layout)
    if not state:
        print("No sandbox in %s (run `python -m sandbox up`)" % _rel(layout.root))
        return 3
    if args.json:
        print(json.dumps({"state": state, "health": checks}, indent=2, sort_keys=True))
        return 0 if all(checks.values()) else 1
    pg, gcs = state["postgres"], state["gcs"]
    rows = (pg.get("dataset") or {}).get("rows") or {}
    size = (pg.get("dataset") or {}).get("size_mb")
    print("Sandbox in %s" % _rel(layout.root))
    print(
        "  PostgreSQL    %-8s %s:%s  database %s%s, %s rows"
        % (
            _word(checks["postgres"]),
            pg["host"],
            pg["port"],
            pg["database"],
            " (%s MB dataset)" % size if size else "",
            format(sum(rows.values()), ","),
        )
    )
    print(
        "  GCS emulator  %-8s %s  buckets %s"
        % (_word(checks["gcs"]), gcs["endpoint"], ", ".join(b["name"] for b in gcs["buckets"]))
    )
    print(
        "  Kubernetes    %-8s port %s, kubeconfig %s"
        % (_word(checks["k8s"]), state["k8s"]["port"], _rel(state["k8s"]["kubeconfig"]))
    )
    print("  Health        %-8s %s" % (_word(checks["app_health"]), state["app_health_url"]))
    return 0 if all(checks.values()) else 1


def cmd_demo(layout, args):
    from sandbox import demo

    def up():
        cmd_up(layout, args)
        return layout.read_state()

    return demo.run(layout, up)


def _word(ok):
    return "running" if ok else "DOWN"


def _rel(path):
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value else default


def parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--dir",
        default=os.environ.get("SANDBOX_DIR", os.path.join(REPO, ".sandbox")),
        help="sandbox directory (default: .sandbox/ in the checkout; env SANDBOX_DIR)",
    )
    for option, env, default, what in (
        ("--pg-port", "SANDBOX_PG_PORT", 55432, "PostgreSQL port"),
        ("--gcs-port", "SANDBOX_GCS_PORT", 54443, "GCS emulator port"),
        ("--k8s-port", "SANDBOX_K8S_PORT", 56443, "fake Kubernetes API port"),
        ("--health-port", "SANDBOX_HEALTH_PORT", 58080, "application health endpoint port"),
    ):
        common.add_argument(
            option, type=int, default=_env_int(env, default), help="%s (default %d; env %s)" % (what, default, env)
        )
    top = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", parents=[common], help="start everything (idempotent) and load the dataset once")
    up.add_argument(
        "--size-mb",
        type=int,
        default=_env_int("SANDBOX_SIZE_MB", 64),
        help="size of the diagnosticpro database in MB (default 64)",
    )
    up.add_argument("--seed", type=int, default=1, help="dataset seed (default 1)")
    up.add_argument("--reload", action="store_true", help="drop and reload the database even if already loaded")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", parents=[common], help="stop everything; keep the data unless --purge")
    down.add_argument("--purge", action="store_true", help="also delete the sandbox directory (data, keys, backups)")
    down.set_defaults(func=cmd_down)
    status = sub.add_parser("status", parents=[common], help="what runs where, and whether it answers")
    status.add_argument("--json", action="store_true", help="machine-readable state and health")
    status.set_defaults(func=cmd_status)
    demo = sub.add_parser("demo", parents=[common], help="up, then backup, verify, simulated loss, recovery, summary")
    demo.add_argument("--size-mb", type=int, default=_env_int("SANDBOX_SIZE_MB", 64))
    demo.add_argument("--seed", type=int, default=1, help="dataset seed (default 1)")
    demo.add_argument("--reload", action="store_true", help="drop and reload the database even if already loaded")
    demo.set_defaults(func=cmd_demo)
    return top


def main(argv=None):
    args = parser().parse_args(argv)
    layout = Layout(args.dir, args.pg_port, args.gcs_port, args.k8s_port, args.health_port)
    try:
        return args.func(layout, args)
    except SandboxError as exc:
        print(str(exc), file=sys.stderr)
        return 1
