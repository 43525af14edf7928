"""Every role's meta/argument_specs.yml is its contract, and its README shows it in use.

Parametrized over roles/*, so a new role is covered the moment it exists:
- every variable in defaults/main.yml is an option of the role, and every option either has a
  default there or is marked ``required: true`` (an option documented but silently undefined
  is how a 3 a.m. run dies half-way through);
- a ``default:`` written in the spec is the value defaults/main.yml really sets;
- ``ansible-doc -t role`` renders it, with ``version_added`` on the main entry point (which
  is also how antsibull-changelog lists the role under "New Roles");
- the README has a runnable example: a fenced ``yaml`` playbook using the role by its FQCN;
  every such playbook passes ``ansible-playbook --syntax-check``.
"""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml
from collection_env import COLLECTION, ROOT, ansible_doc_json, collection_env, tool

ROLES = sorted(path.name for path in ROOT.glob("roles/*") if path.is_dir())
ANSIBLE_PLAYBOOK = tool("ansible-playbook")
YAML_BLOCK = re.compile(r"^```ya?ml[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


def _defaults(role):
    path = ROOT / "roles" / role / "defaults" / "main.yml"
    return (_load(path) or {}) if path.exists() else {}


def _entry_points(role):
    path = ROOT / "roles" / role / "meta" / "argument_specs.yml"
    assert path.exists(), "roles/%s has no meta/argument_specs.yml" % role
    specs = (_load(path) or {}).get("argument_specs") or {}
    assert "main" in specs, "roles/%s/meta/argument_specs.yml has no 'main' entry point" % role
    return specs


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """ansible-doc --json for all roles at once."""
    return ansible_doc_json("role", ROLES, tmp_path_factory.mktemp("roles"))


@pytest.mark.parametrize("role", ROLES)
def test_role_documentation_renders(rendered, role):
    docs, stderr = rendered
    fqcn = "%s.%s" % (COLLECTION, role)
    assert fqcn in docs, "ansible-doc could not render %s:\n%s" % (fqcn, stderr)
    main = docs[fqcn]["entry_points"].get("main") or {}
    assert str(main.get("version_added")) == "0.1.0", "entry point main should have version_added: 0.1.0"


@pytest.mark.parametrize("role", ROLES)
def test_defaults_are_the_documented_options(role):
    defaults = _defaults(role)
    specs = _entry_points(role)
    documented = {}
    for entry_point, spec in specs.items():
        assert spec.get("short_description"), "entry point %s has no short_description" % entry_point
        for name, option in (spec.get("options") or {}).items():
            documented.setdefault(name, []).append((entry_point, option))

    undocumented = sorted(set(defaults) - set(documented))
    assert not undocumented, "defaults/main.yml sets variables missing from argument_specs: %s" % undocumented

    undefined = sorted(
        "%s (entry point %s)" % (name, entry_point)
        for name, uses in documented.items()
        for entry_point, option in uses
        if name not in defaults and not option.get("required")
    )
    assert not undefined, "options with neither a value in defaults/main.yml nor required: true: %s" % undefined

    for name, uses in documented.items():
        for entry_point, option in uses:
            assert option.get("description"), "option %s (entry point %s) has no description" % (name, entry_point)
            if "default" in option and name in defaults:
                assert option["default"] == defaults[name], (
                    "option %s: argument_specs default %r differs from defaults/main.yml %r"
                    % (name, option["default"], defaults[name])
                )


@pytest.mark.parametrize("role", ROLES)
def test_readme_has_a_runnable_example(role, tmp_path):
    readme = ROOT / "roles" / role / "README.md"
    assert readme.exists(), "roles/%s has no README.md" % role
    fqcn = "%s.%s" % (COLLECTION, role)
    playbooks = []
    for block in YAML_BLOCK.findall(readme.read_text()):
        data = yaml.safe_load(block)
        if isinstance(data, list) and data and all(isinstance(play, dict) and "hosts" in play for play in data):
            if fqcn in block:
                playbooks.append(block)
    assert playbooks, "README.md has no fenced yaml playbook using the role as %s" % fqcn

    env = collection_env(tmp_path)
    for number, block in enumerate(playbooks, 1):
        playbook = tmp_path / ("example%d.yml" % number)
        playbook.write_text(block)
        proc = subprocess.run(
            [ANSIBLE_PLAYBOOK, "--syntax-check", "-i", "localhost,", str(playbook)],
            capture_output=True,
            text=True,
            env=env,
            cwd=str(tmp_path),
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, "README example %d does not pass --syntax-check:\n%s%s" % (
            number,
            proc.stdout,
            proc.stderr,
        )
