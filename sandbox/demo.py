"""`make demo`: the whole story on one machine, in a few minutes.

sandbox up -> backup_database.yml -> verify_backup.yml -> simulated data loss ->
recover_database.yml (the application is scaled down and back around the restore) ->
a short summary: backup size and throughput, time to recover, rows verified, replicas.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

import psycopg2

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOSS_SQL = (
    # An operator's mistake: a DELETE without its WHERE clause on one table, a bad UPDATE on another.
    "DELETE FROM payment_transactions",
    "UPDATE diagnostic_submissions SET status = 'failed'",
)


def _banner(text):
    print("\n\033[1m== %s\033[0m" % text, flush=True)


def _playbook(layout, name, *extra):
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
        SANDBOX_DIR=layout.root,
        SANDBOX_PG_PORT=str(layout.pg_port),
        SANDBOX_GCS_PORT=str(layout.gcs_port),
        SANDBOX_K8S_PORT=str(layout.k8s_port),
        SANDBOX_HEALTH_PORT=str(layout.health_port),
    )
    argv = [
        os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
        "-i",
        "inventories/sandbox",
        "playbooks/%s.yml" % name,
        *extra,
    ]
    print("$ %s" % " ".join(argv[1:]), flush=True)
    started = time.monotonic()
    result = subprocess.run(argv, cwd=REPO, env=env, check=False)
    if result.returncode != 0:
        raise SystemExit("%s failed (exit %d): see the output above" % (name, result.returncode))
    return time.monotonic() - started


def _counts(state):
    pg = state["postgres"]
    with (
        psycopg2.connect(
            host=pg["host"], port=pg["port"], dbname=pg["database"], user=pg["user"], passfile=pg["passfile"]
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SELECT count(*) FROM payment_transactions")
        payments = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM diagnostic_submissions WHERE status = 'failed'")
        cancelled = cur.fetchone()[0]
    return payments, cancelled


def _lose_data(state):
    pg = state["postgres"]
    with (
        psycopg2.connect(
            host=pg["host"], port=pg["port"], dbname=pg["database"], user=pg["user"], passfile=pg["passfile"]
        ) as conn,
        conn.cursor() as cur,
    ):
        for statement in LOSS_SQL:
            print("  %s" % statement)
            cur.execute(statement)


def _replicas(state):
    with open(state["k8s"]["kubeconfig"]) as handle:
        server = [line.split("server:")[1].strip() for line in handle if "server:" in line][0]
    url = "%s/apis/apps/v1/namespaces/diagnosticpro/deployments/diagnosticpro-api" % server
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - the sandbox's loopback API
        obj = json.loads(resp.read())
    return obj["spec"].get("replicas"), (obj.get("status") or {}).get("readyReplicas") or 0


class _ReplicaWatch(threading.Thread):
    """Samples the Deployment while the recovery runs, to show it really went to 0 and came back."""

    def __init__(self, state):
        super().__init__(daemon=True)
        self.state, self.stop, self.seen = state, threading.Event(), []

    def run(self):
        while not self.stop.is_set():
            try:
                self.seen.append(_replicas(self.state)[1])
            except OSError:
                pass
            time.sleep(0.2)


def _newest_manifest(backup_dir, pattern):
    paths = sorted(glob.glob(os.path.join(backup_dir, pattern)), key=os.path.getmtime)
    if not paths:
        raise SystemExit("no backup manifest in %s" % backup_dir)
    with open(paths[-1]) as handle:
        return json.load(handle)


def run(layout, up):
    """``up``: a callable that brings the sandbox up and returns its state."""
    t0 = time.monotonic()
    _banner("1/5 Sandbox: PostgreSQL, GCS emulator (3 regional buckets), Kubernetes API double")
    state = up()
    _banner("2/5 Back up: pg_dump | zstd | gpg -> local copy -> 3 buckets, each copy verified")
    _playbook(layout, "backup_database")
    backup = _newest_manifest(state["backup_dir"], "diagnosticpro-2*.manifest.json")
    _banner("3/5 Verify: restore the newest backup into a scratch database, compare row counts, run checks")
    _playbook(layout, "verify_backup")
    _banner("4/5 Simulated data loss")
    payments_before, cancelled_before = _counts(state)
    _lose_data(state)
    payments_lost, cancelled_lost = _counts(state)
    print(
        "  payment_transactions: %d -> %d rows; failed submissions: %d -> %d"
        % (payments_before, payments_lost, cancelled_before, cancelled_lost)
    )
    replicas_before = _replicas(state)
    _banner("5/5 Recover: scale the app to 0, snapshot, restore the newest backup, verify, scale back, health check")
    watch = _ReplicaWatch(state)
    watch.start()
    try:
        recover_s = _playbook(layout, "recover_database", "-e", "pg_restore_clean=true")
    finally:
        watch.stop.set()
        watch.join()
    payments_after, cancelled_after = _counts(state)
    replicas_after = _replicas(state)
    rows = sum(t["rows"] for t in backup["tables"].values())
    size_mb = backup["source"]["database_size"] / 1e6
    _banner("Summary")
    print(
        "  backup        %s: %.1f MB database -> %.1f MB artifact in %.1f s (%.1f MB/s), in %d regions"
        % (
            backup["backup_id"],
            size_mb,
            backup["artifact"]["size"] / 1e6,
            backup["duration_s"],
            size_mb / max(backup["duration_s"], 1e-6),
            len(state["gcs"]["buckets"]),
        )
    )
    print(
        "  data loss     payment_transactions %d -> %d, failed submissions %d -> %d"
        % (payments_before, payments_lost, cancelled_before, cancelled_lost)
    )
    print("  recovery      %.1f s for the whole recover_database playbook (RTO for this dataset)" % recover_s)
    print(
        "  verified      %d rows in %d tables match the backup's manifest; payment_transactions %d, "
        "failed submissions %d" % (rows, len(backup["tables"]), payments_after, cancelled_after)
    )
    lowest = min(watch.seen) if watch.seen else "?"
    print(
        "  application   diagnosticpro-api replicas %d (ready %d) before; ready replicas during the recovery "
        "went down to %s; %d (ready %d) after" % (replicas_before + (lowest,) + replicas_after)
    )
    print("  total         %.0f s; `make sandbox-down` stops the sandbox" % (time.monotonic() - t0))
    ok = (payments_after, cancelled_after) == (payments_before, cancelled_before) and replicas_after == replicas_before
    ok = ok and bool(watch.seen) and min(watch.seen) == 0
    return 0 if ok else 1
