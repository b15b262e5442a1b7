# make demo       - bootstrap .venv, prepare a small synthetic dataset, train briefly, compare
# make test       - bootstrap .venv and run the whole test suite
# make test-fast  - the tests that start no training process and no cluster (under a minute)
# make scaffold   - regenerate submit_*.sh, unet_*.py, scripts/registry.sh from unetbench/registry.py
# Override the torch requirement for your platform, e.g. make demo TORCH=torch==2.5.1

PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo test test-fast scaffold venv lint clean-demo

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[test,kaggle]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" ./run_benchmark.sh --demo --local --force

test: venv
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

scaffold: venv
	$(PY) -m unetbench.scaffold

lint: venv
	$(VENV)/bin/shellcheck -x -S style *.sh scripts/*.sh .ci/run site.env.example
