"""Every module's documentation renders with ansible-doc, the way an operator reads it.

Parametrized over the files in plugins/modules/, so a new module is covered the moment it
exists. ansible-test's validate-modules (make lint-sanity) checks DOCUMENTATION against the
argument_spec; this test checks what the reader gets: a description, every option described,
the attributes declared, EXAMPLES that are YAML tasks calling the module by its FQCN, and a
RETURN whose values say when they are returned and what they look like.
"""

from __future__ import annotations

import pytest
import yaml
from collection_env import COLLECTION, ROOT, ansible_doc_json

MODULES = sorted(path.stem for path in (ROOT / "plugins" / "modules").glob("*.py") if not path.name.startswith("_"))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """ansible-doc --json for all modules at once."""
    return ansible_doc_json("module", MODULES, tmp_path_factory.mktemp("modules"))


def _walk_options(options, path=""):
    for name, spec in (options or {}).items():
        yield path + name, spec
        yield from _walk_options(spec.get("suboptions"), path + name + ".")


def _walk_returns(returns, path=""):
    for name, spec in (returns or {}).items():
        yield path + name, spec
        yield from _walk_returns(spec.get("contains"), path + name + ".")


@pytest.mark.parametrize("module", MODULES)
def test_module_documentation_renders(rendered, module):
    docs, stderr = rendered
    fqcn = "%s.%s" % (COLLECTION, module)
    assert fqcn in docs, "ansible-doc could not render %s:\n%s" % (fqcn, stderr)
    entry = docs[fqcn]
    doc = entry["doc"]

    assert doc.get("short_description"), "DOCUMENTATION has no short_description"
    assert doc.get("description"), "DOCUMENTATION has no description"
    assert doc.get("author"), "DOCUMENTATION has no author"
    assert str(doc.get("version_added")) == "0.1.0", "DOCUMENTATION version_added should be 0.1.0"
    undocumented = [name for name, spec in _walk_options(doc.get("options")) if not spec.get("description")]
    assert not undocumented, "options without a description: %s" % undocumented

    attributes = doc.get("attributes") or {}
    for attribute in ("check_mode", "diff_mode"):
        assert attribute in attributes, "attributes.%s is not declared" % attribute
        assert attributes[attribute].get("support") in ("full", "partial", "none", "N/A")


@pytest.mark.parametrize("module", MODULES)
def test_module_examples_are_tasks_using_the_fqcn(rendered, module):
    docs, stderr = rendered
    fqcn = "%s.%s" % (COLLECTION, module)
    assert fqcn in docs, "ansible-doc could not render %s:\n%s" % (fqcn, stderr)
    examples = docs[fqcn].get("examples") or ""
    tasks = yaml.safe_load(examples)
    assert isinstance(tasks, list) and tasks, "EXAMPLES must be a non-empty YAML list of tasks"
    for task in tasks:
        assert isinstance(task, dict) and task.get("name"), "every example task needs a name: %r" % (task,)
    assert any(fqcn in task for task in tasks), "no example calls the module as %s" % fqcn


@pytest.mark.parametrize("module", MODULES)
def test_module_return_values_are_documented(rendered, module):
    docs, stderr = rendered
    fqcn = "%s.%s" % (COLLECTION, module)
    assert fqcn in docs, "ansible-doc could not render %s:\n%s" % (fqcn, stderr)
    returns = docs[fqcn].get("return")
    assert returns, "RETURN is empty"
    for name, spec in _walk_returns(returns):
        assert spec.get("description"), "RETURN %s has no description" % name
        assert spec.get("type"), "RETURN %s has no type" % name
    # Inside `contains`, `returned` is optional (Ansible's convention): the parent says when.
    silent = [name for name, spec in returns.items() if not spec.get("returned")]
    assert not silent, "RETURN values that do not say when they are returned: %s" % silent
    missing_sample = [name for name, spec in returns.items() if "sample" not in spec and not spec.get("contains")]
    assert not missing_sample, "RETURN values without a sample (or contains): %s" % missing_sample


def test_action_groups_name_existing_modules():
    """module_defaults groups in meta/runtime.yml must not name a module that does not exist."""
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    for group, members in (runtime.get("action_groups") or {}).items():
        unknown = sorted(set(members) - set(MODULES))
        assert not unknown, "action group %s lists modules that do not exist: %s" % (group, unknown)
