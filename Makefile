# The two commands of this repository (run as root on Debian 12):
#   make demo   set up, boot the test host, show a non-root user running the real parts
#   make test   set up, lint, type-check, unit tests, integration tests in the test host
#   make check  lint, type-check, unit tests: no root, no test host
#   make deb    the Debian package, in DEB_DIR (packaging/README.md)
#   make chaos  the reliability campaign (docs/reliability.md): long fuzzing, kill -9, concurrency
SHELL := /bin/bash
VENV := .venv
TESTHOST := tests/host/testhost
SETUP ?= setup

.PHONY: venv check setup lint typecheck unit hostbuild deb integration test demo down clean-cache bench chaos

setup:
	@tests/host/setup-host

venv:
	@tests/host/setup-host --venv-only

# Quick work, without root or the test host: lint, types, unit and fuzz tests.
check:
	$(MAKE) --no-print-directory lint typecheck unit SETUP=venv

lint: $(SETUP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# pyproject's [tool.mypy] says why the test directories other than tests/unit take a run each.
typecheck: $(SETUP)
	$(VENV)/bin/mypy
	for tests in fuzz integration chaos; do \
		$(VENV)/bin/mypy --cache-dir .mypy_cache/$$tests tests/$$tests || exit; \
	done
	cd tests/host && ../../$(VENV)/bin/mypy --strict harness recipe/images.py

unit: $(SETUP)
	$(VENV)/bin/pytest tests/unit tests/fuzz

hostbuild: setup
	$(TESTHOST) build --vm

# Built outside the clone (dpkg-buildpackage writes beside and inside its source tree).
DEB_DIR ?= /var/tmp/rctl-deb
deb: setup
	packaging/make-deb $(DEB_DIR)

# The nspawn tier's run tests the package of `make deb` (tests/host/run-integration).
integration: hostbuild deb
	DEB_DIR=$(DEB_DIR) tests/host/run-integration

test: lint typecheck unit integration

demo: setup
	$(TESTHOST) build
	$(TESTHOST) run -- tests/host/demo
	$(TESTHOST) down --all

# rctl against podman in the nspawn tier (not part of `make test`; at most 30 minutes):
# bench/results.json, bench/charts/ and bench/RESULTS.md. BENCH_ARGS go to bench/bench.py.
BENCH_ARGS ?=
bench: setup
	bench/make-bench $(BENCH_ARGS)

# The reliability campaign (not part of `make test`, which runs its short subset: the fuzz
# tests with few examples, tests/integration/test_chaos_smoke.py). Under 30 minutes: fuzzing
# with the `chaos` profile here, then tests/chaos/ in the nspawn tier. CHAOS_ENV may set
# RCTL_FUZZ_EXAMPLES, RCTL_CHAOS_SEED, RCTL_CHAOS_KILLS.
CHAOS_ENV ?=
chaos: setup
	rc=0; \
	env $(CHAOS_ENV) $(VENV)/bin/pytest -p no:cacheprovider -q tests/fuzz \
		--hypothesis-profile=chaos --hypothesis-show-statistics || rc=1; \
	$(TESTHOST) build && \
	$(TESTHOST) run -- env $(CHAOS_ENV) python -m pytest -p no:cacheprovider -o addopts= -ra -s \
		--strict-markers --timeout=1800 tests/chaos || rc=1; \
	exit $$rc

down:
	$(TESTHOST) down --all

clean-cache: down
	rm -rf /var/cache/rctl-testhost /var/lib/rctl-testhost
