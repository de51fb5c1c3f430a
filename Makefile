# The two commands of the README:
#   make quickstart   set up .venv, run the built-in quickstart sweep, write its report
#   make test         set up .venv, then every check (ruff, format, mypy, all tests)
# Checks and sweeps run inside a private network namespace with only loopback, so that
# Ray and every test server bind to 127.0.0.1 (installing needs the network, so it
# happens first, outside). Needs root for `unshare --net` (these machines: yes).
VENV ?= .venv
BIN := $(VENV)/bin
OFFLINE := unshare --net sh -c
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup setup-test quickstart test check lint typecheck unit all-tests

# .venv only; `make test` also installs headless Chromium (the report's browser test).
setup:
	scripts/setup.sh

setup-test:
	scripts/setup.sh --with-browser

quickstart: setup
	$(OFFLINE) 'ip link set lo up && $(MAKE) --no-print-directory quickstart-offline'

quickstart-offline:
	$(BIN)/xstilts run quickstart
	$(BIN)/xstilts report quickstart

test: setup-test
	$(OFFLINE) 'ip link set lo up && $(MAKE) --no-print-directory check'

check: lint typecheck all-tests

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

# Every test: unit, integration and slow (GPU tests skip themselves without a GPU).
all-tests:
	$(BIN)/pytest -m "not gpu" -q -p no:cacheprovider --timeout 1800

# Unit tests only (what plain `pytest` runs).
unit:
	$(BIN)/pytest -q
