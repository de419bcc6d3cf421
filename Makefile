# Two commands do everything on a fresh machine:
#   make run    set up .venv and start the bot (without a token it explains what to set)
#   make test   set up .venv with the test extras and run the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CONFIG ?=

.PHONY: run test lint bench clean setup setup-dev

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install -e '.[dev,ray]'
	touch $@

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

run: setup
	$(PY) -m bot --ok-without-token $(if $(CONFIG),--config $(CONFIG))

test: setup-dev
	$(PY) -m pytest -ra

lint: setup-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/hadolint Dockerfile

bench: setup
	$(PY) benchmarks/speed.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
