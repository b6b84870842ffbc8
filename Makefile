# Developer shortcuts; each target is one command you can also run by hand (see CONTRIBUTING.md).
PYTHON ?= .venv/bin/python

.PHONY: venv lint typecheck test-unit test-unit-isolated test bench

venv:
	python3 -m venv .venv && .venv/bin/pip install -q -e ".[dev]"

lint:
	$(PYTHON) -m ruff check .
	$(dir $(PYTHON))lint-imports

typecheck:
	$(PYTHON) -m mypy fgd_core fgd_workers fgd_api

# Pure tests: no PostgreSQL, no RabbitMQ, no network.
test-unit:
	$(PYTHON) -m pytest -q tests/unit

# The same in a network namespace of its own (Linux, util-linux unshare): no service is
# reachable at all, which proves the unit tests need none.
test-unit-isolated:
	unshare -rn sh -c 'ip link set lo up; $(PYTHON) -m pytest -q tests/unit'

# Everything (PostgreSQL on 127.0.0.1:5432 and RabbitMQ on 127.0.0.1:5672 must run;
# .ci/run starts them when they are down).
test:
	$(PYTHON) -m pytest -q

bench:
	@echo "each benchmark is a script: see bench/README.md"; ls bench/bench_*.py
