# Quality gates: `make lint` runs every linter, each also runnable on its own.
#   make lint-sanity   ansible-test sanity (all tests, offline, in ansible-test's own virtualenvs)
#   make lint-ansible  ansible-lint, production profile: roles, playbooks, molecule, inventories, meta
#   make lint-yaml     yamllint on every YAML file in the tree
#   make lint-python   ruff format --check + ruff check
#   make changelog     CHANGELOG.md from changelogs/fragments (antsibull-changelog)
# One sanity test: make lint-sanity SANITY_ARGS="--test pylint".
# No container engine and no galaxy needed; the only downloads are the sanity tests' Python
# requirements from the package index, on the first run.

.PHONY: lint-sanity lint-ansible lint-yaml lint-python lint-stage changelog changelog-lint

# ansible-test only runs inside ansible_collections/<namespace>/<name>/. A symlink to the
# checkout does not work: ansible-test resolves the working directory, landing back in the
# checkout. So lint-stage copies the files git lists (tracked + untracked-but-not-ignored, what
# ansible-test itself scans in a git checkout): .venv, .sandbox, build and other ignored junk
# never reach the sanity tests. The copy gets its own empty git repository: without one,
# ansible-test finds the checkout's .git above it and asks that repository for the files under
# build/, which it ignores, so every test would be skipped. The copy's tests/output/ survives
# between runs: it holds ansible-test's delegation virtualenv, which makes warm runs fast.
SANITY_COLL := build/ansible_collections/diagnosticpro/dr
# Development tooling that is not part of the collection (galaxy.yml's build_ignore keeps it out
# of the tarball too): the sandbox and benchmark programs, inventories, docs. ruff and yamllint
# still check it; sanity checks what ships plus the collection's tests.
SANITY_SKIP := sandbox bench inventories docs
# One Python: the controller's (Debian bookworm's python3 is 3.11 too). Without --python
# ansible-test also runs compile/import for every other version it finds, or warns for each
# one it does not: the result would depend on the machine.
SANITY_PYTHON ?= 3.11
# --venv, not --local: ansible-test installs each sanity test's pinned requirements (pylint,
# an older yamllint and antsibull-changelog, ...) into its own virtualenvs under
# ~/.ansible/test/venv/ instead of into .venv, whose pins belong to this project.
# --docker needs a container engine, which neither this machine nor CI has.
SANITY_ARGS ?=
ANSIBLE_TEST_CACHE := $(HOME)/.ansible/test/cache

# -k: every linter runs even when an earlier one fails, so one run lists every finding.
lint: install
	@$(MAKE) --no-print-directory -k lint-python lint-yaml changelog-lint lint-ansible lint-sanity

lint-stage: install
	@rm -rf $(SANITY_COLL).new
	@mkdir -p $(SANITY_COLL).new
	@git ls-files -z --cached --others --exclude-standard -- . $(foreach d,$(SANITY_SKIP),':!:$(d)') \
	  | tar -c --null --ignore-failed-read -T - -f - | tar -x -C $(SANITY_COLL).new -f -
	@if [ -d $(SANITY_COLL)/tests/output ]; then mkdir -p $(SANITY_COLL).new/tests && mv $(SANITY_COLL)/tests/output $(SANITY_COLL).new/tests/; fi
	@git init --quiet $(SANITY_COLL).new
	@rm -rf $(SANITY_COLL) && mv $(SANITY_COLL).new $(SANITY_COLL)

# ansible-test bootstraps pip in each virtualenv with a get-pip.py downloaded from
# ci-files.testing.ansible.com (unreachable offline) unless it finds one in its cache: put the
# offline stand-in there, under the name of the pip version this ansible-test asks for (read
# from ansible-test itself, so an ansible-core upgrade keeps working).
lint-sanity: lint-stage
	@pip_version="$$($(BIN)/python -c 'import types; from ansible_test._internal.python_requirements import get_venv_packages; print(get_venv_packages(types.SimpleNamespace(version="$(SANITY_PYTHON)"))["pip"])')"; \
	mkdir -p $(ANSIBLE_TEST_CACHE); \
	install -m 0644 tests/sanity/get_pip_offline.py $(ANSIBLE_TEST_CACHE)/get_pip_$${pip_version//./_}.py
	cd $(SANITY_COLL) && $(CURDIR)/$(BIN)/ansible-test sanity --venv --python $(SANITY_PYTHON) --color no $(SANITY_ARGS)

# ansible-lint resolves our own modules through the .collections link, the bundled
# kubernetes.core/community.postgresql from the virtualenv; --offline: no galaxy. Colours and
# hyperlinks only on a terminal: in a CI log they are escape-sequence noise.
lint-ansible: install
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.collections $(BIN)/ansible-lint --offline --profile production \
	  $$([ -t 1 ] || echo --nocolor)

lint-yaml: install
	$(BIN)/yamllint --strict .

# Both, even when the first fails: one run lists every finding.
lint-python: install
	@rc=0; \
	echo "ruff format --check ."; $(BIN)/ruff format --check --output-format concise . || rc=1; \
	echo "ruff check ."; $(BIN)/ruff check . || rc=1; \
	exit $$rc

# After adding a fragment (changelogs/README.md): fold fragments and new modules into
# changelogs/changelog.yaml under galaxy.yml's version (a release the first time, a refresh of
# that release's entries after) and regenerate CHANGELOG.md.
GALAXY_VERSION = $(shell sed -n 's/^version: *//p' galaxy.yml)

changelog: install
	$(BIN)/antsibull-changelog lint
	@if grep -q "^  $(GALAXY_VERSION):" changelogs/changelog.yaml 2>/dev/null; then \
	  echo "antsibull-changelog generate --refresh --reload-plugins"; \
	  $(BIN)/antsibull-changelog generate --refresh --reload-plugins; \
	else \
	  echo "antsibull-changelog release --reload-plugins"; \
	  $(BIN)/antsibull-changelog release --reload-plugins; \
	fi
	@# --reload-plugins rebuilds this cache on every run anyway: do not leave it to be committed.
	@rm -f changelogs/.plugin-cache.yaml

# Fragments must parse, and CHANGELOG.md must be what changelogs/changelog.yaml generates.
changelog-lint: install
	$(BIN)/antsibull-changelog lint
	@mkdir -p build
	@$(BIN)/antsibull-changelog generate --output build/CHANGELOG.md --output-format md
	@diff -u CHANGELOG.md build/CHANGELOG.md || { echo "CHANGELOG.md is stale: run make changelog"; exit 1; }
