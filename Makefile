# make demo       - bootstrap .venv, prepare a small synthetic dataset, train briefly, compare
# make test       - bootstrap .venv and run the whole test suite
# make test-fast  - the tests that start no training process and no cluster (under a minute)
# make scaffold   - regenerate submit_*.sh, unet_*.py, scripts/registry.sh from unetbench/core/registry.py
# Override the torch requirements for your platform, e.g. make demo TORCH="torch==2.5.1 torchvision==0.20.1"
# torch and torchvision are installed together, from one release pair: a torchvision built for
# another torch fails at import (operator torchvision::nms does not exist). The pairs below are
# the ones known to import on these machines (deeplabv3_resnet101 needs torchvision).

PYTHON ?= python3
ARCH := $(shell uname -m)
ifeq ($(ARCH),aarch64)
TORCH ?= torch==2.9.1 torchvision==0.24.1
else
TORCH ?= torch==2.14.1 torchvision==0.29.1
endif
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo test test-fast scaffold venv lint clean-demo

# Checked before pip: with an older Python (RHEL/Rocky/Alma 9's python3 is 3.9) pip only says
# ResolutionImpossible for torch. The minimum is pyproject.toml's requires-python, read from there.
$(VENV)/.installed: pyproject.toml
	@$(PYTHON) scripts/check_python.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
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
