"""Both inventories parse with ansible-inventory and carry the shared dr_* contract."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REGIONS = ["us-central1", "us-east1", "europe-west1"]
SHARED = (
    "dr_db_port",
    "dr_db_name",
    "dr_db_user",
    "dr_db_password_file",
    "dr_passphrase_file",
    "dr_buckets",
    "dr_gcs_prefix",
    "dr_backup_dir",
    "dr_backup_tier",
    "dr_retention_days",
    "dr_k8s_kubeconfig",
    "dr_k8s_namespace",
    "dr_app_workloads",
    "dr_app_health_url",
)


@functools.cache  # read-only results: each inventory is parsed once
def inventory(name):
    result = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "ansible-inventory"),
            "-i",
            os.path.join(REPO, "inventories", name),
            "--list",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg")),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("name", ["sandbox", "production"])
def test_every_backup_host_has_the_shared_variables(name):
    data = inventory(name)
    hosts = data["backup_hosts"].get("hosts", []) + [
        host for child in data["backup_hosts"].get("children", []) for host in data[child]["hosts"]
    ]
    assert hosts and data["db_primary"]["hosts"]
    for host in hosts:
        hostvars = data["_meta"]["hostvars"][host]
        missing = [var for var in SHARED if var not in hostvars]
        assert not missing, (host, missing)
        assert [b["region"] for b in hostvars["dr_buckets"]] == REGIONS
        assert "dr_db_host" in hostvars


def test_production_regions_have_their_own_bucket_context_and_database():
    data = inventory("production")
    seen = set()
    for group, region in zip(("us_central1", "us_east1", "europe_west1"), REGIONS):
        (host,) = data[group]["hosts"]
        hostvars = data["_meta"]["hostvars"][host]
        assert hostvars["dr_region"] == region
        assert hostvars["dr_region_bucket"] in [b["name"] for b in hostvars["dr_buckets"] if b["region"] == region]
        seen.add((hostvars["dr_k8s_context"], hostvars["dr_db_host"]))
    assert len(seen) == 3
    tiers = data["_meta"]["hostvars"]["backup-us-central1.internal"]["dr_tiers"]
    assert tiers["tier1"]["rpo_minutes"] == 15 and tiers["tier4"]["rpo_minutes"] == 1440


def test_production_holds_no_secret_values():
    """Secrets are file paths; the vault example carries names and placeholders only."""
    data = inventory("production")
    for hostvars in data["_meta"]["hostvars"].values():
        assert not [var for var in hostvars if var.startswith("vault_")]
        for var, value in hostvars.items():
            if var.endswith("_file"):
                assert str(value).startswith("/"), var
    with open(os.path.join(REPO, "inventories", "production", "group_vars", "all", "vault.yml.example")) as handle:
        values = [line.split(":", 1)[1].strip() for line in handle if line.startswith("vault_") and ":" in line]
    assert values and all(v.startswith(('"<', "|")) for v in values)
