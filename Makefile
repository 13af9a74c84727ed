# The two commands of this repository (run as root on Debian 12):
#   make demo   set up, boot the test host, show a non-root user running the real parts
#   make test   set up, lint, type-check, unit tests, integration tests in the test host
SHELL := /bin/bash
VENV := .venv
TESTHOST := tests/host/testhost

.PHONY: setup lint typecheck unit hostbuild integration test demo down clean-cache bench

setup:
	@tests/host/setup-host

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy
	cd tests/host && ../../$(VENV)/bin/mypy --strict harness recipe/images.py

unit: setup
	$(VENV)/bin/pytest tests/unit

hostbuild: setup
	$(TESTHOST) build --vm

integration: hostbuild
	tests/host/run-integration

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

down:
	$(TESTHOST) down --all

clean-cache: down
	rm -rf /var/cache/rctl-testhost /var/lib/rctl-testhost
