"""backup_application.yml -> delete the Deployment and the Secret -> recover_application.yml:
both are back and identical (minus cluster-managed fields), and the Secret's value never
appears in plaintext on disk or in any output. Also backup_config.yml and a stuck rollout."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest
import yaml

from ansible_collections.diagnosticpro.dr.plugins.module_utils._k8s_manifests import strip
from sandbox.services import free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
SECRET_VALUE = "whsec_" + "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
pytestmark = pytest.mark.k8s


@pytest.fixture(scope="module")
def sandbox():
    base = tempfile.mkdtemp(prefix="dr-test-appbk-", dir="/tmp")
    os.chmod(base, 0o711)  # noqa: S103 - the PostgreSQL OS user must traverse it
    root = os.path.join(base, "s")
    ports = {
        "SANDBOX_PG_PORT": free_port(),
        "SANDBOX_GCS_PORT": free_port(),
        "SANDBOX_K8S_PORT": free_port(),
        "SANDBOX_HEALTH_PORT": free_port(),
    }
    env = dict(
        os.environ,
        SANDBOX_DIR=root,
        HOME=base,
        ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        PATH=BIN + os.pathsep + os.environ["PATH"],
        **{k: str(v) for k, v in ports.items()},
    )
    up = subprocess.run(
        [sys.executable, "-m", "sandbox", "up", "--size-mb", "8"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield {"root": root, "env": env, "base": base}
    finally:
        subprocess.run(
            [sys.executable, "-m", "sandbox", "down", "--purge"], cwd=REPO, env=env, capture_output=True, check=False
        )
        shutil.rmtree(base, ignore_errors=True)


def kubectl(sandbox, *args, stdin=None):
    return subprocess.run(
        [
            os.path.join(BIN, "kubectl"),
            "--kubeconfig",
            os.path.join(sandbox["root"], "k8s/kubeconfig"),
            "-n",
            "diagnosticpro",
            *args,
        ],
        env=sandbox["env"],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def playbook(sandbox, name, *extra):
    return subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), "-i", "inventories/sandbox", "playbooks/%s.yml" % name, *extra],
        cwd=REPO,
        env=sandbox["env"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def live(sandbox, kind, name):
    obj = json.loads(kubectl(sandbox, "get", kind, name, "-o", "json"))
    return strip(obj["apiVersion"], obj["kind"], obj)


def test_application_backup_delete_recover(sandbox):
    kubectl(
        sandbox,
        "apply",
        "-f",
        "-",
        stdin=yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {"name": "stripe-webhook", "namespace": "diagnosticpro"},
                "data": {"secret": base64.b64encode(SECRET_VALUE.encode()).decode()},
            }
        ),
    )
    before = {k: live(sandbox, k, n) for k, n in (("deployment", "diagnosticpro-api"), ("secret", "stripe-webhook"))}

    backup = playbook(sandbox, "backup_application")
    assert backup.returncode == 0, backup.stdout[-3000:]
    kubectl(sandbox, "delete", "deployment", "diagnosticpro-api")
    kubectl(sandbox, "delete", "secret", "stripe-webhook")

    recover = playbook(sandbox, "recover_application", "-e", "app_recover_rollout_timeout=20")
    assert recover.returncode == 0, recover.stdout[-3000:]
    assert "redeploying the manifests" in recover.stdout and "rescued=1" in recover.stdout
    after = {k: live(sandbox, k, n) for k, n in (("deployment", "diagnosticpro-api"), ("secret", "stripe-webhook"))}
    assert after == before
    assert '"status": "ok"' in recover.stdout or "status: ok" in recover.stdout  # the health check saw it

    needles = [SECRET_VALUE, base64.b64encode(SECRET_VALUE.encode()).decode()]
    for text in (backup.stdout, backup.stderr, recover.stdout, recover.stderr):
        assert not any(n in text for n in needles), "a Secret value appeared in playbook output"
    for folder, _unused, files in os.walk(sandbox["root"]):
        if "/pg/" in folder + "/":
            continue  # the database cluster never sees Secrets
        for name in files:
            if not os.path.isfile(os.path.join(folder, name)) or name.startswith("S.gpg-agent"):
                continue  # sockets
            with open(os.path.join(folder, name), "rb") as handle:
                data = handle.read()
            assert not any(n.encode() in data for n in needles), "a Secret value reached %s" % name


def test_restart_of_a_healthy_app_needs_no_redeploy(sandbox):
    result = playbook(sandbox, "recover_application")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "rescued=0" in result.stdout and "not needed" in result.stdout


def test_config_backup_archives_the_config_directories(sandbox):
    result = playbook(sandbox, "backup_config")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "gs://diagnosticpro-backups-europe-west1/config/config-" in result.stdout
