# The two set-up commands: `make test` and `make demo`. Everything they need is
# installed by the project's own scripts into .venv and ~/.cache/django-airflow-client.
# Python 3.12 from pyenv when present, else whatever python3.12 is on PATH.
PYTHON ?= $(or $(lastword $(sort $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python))),python3.12)
DJANGO ?= Django>=6.1,<6.2
VENV ?= .venv
UV := scripts/uv.sh

.PHONY: venv test test-fast lint matrix demo bench clean

$(VENV)/.installed: pyproject.toml
	@echo "Installing the package, Django and the test tools into $(VENV) (1-2 min on first use)"
	$(UV) venv -q --allow-existing --python $(PYTHON) $(VENV)
	VIRTUAL_ENV=$(VENV) $(UV) pip install -q -e . --group test --group lint "$(DJANGO)"
	touch $@

venv: $(VENV)/.installed

## Lint, type-check, then the whole suite (SQLite and PostgreSQL, real Airflow 2 and 3, browser).
test: venv
	VENV=$(VENV) scripts/test.sh

## The fast suite only: no PostgreSQL, no Airflow, no browser.
test-fast: venv
	$(VENV)/bin/pytest -m "not contract and not browser and not postgres" -q

lint: venv
	$(VENV)/bin/ruff check airflow_client tests scripts demo manage.py benchmarks
	$(VENV)/bin/ruff format --check airflow_client tests scripts demo manage.py benchmarks
	git ls-files -z '*.html' | xargs -0 $(VENV)/bin/djade --check --target-version 5.2
	$(VENV)/bin/mypy

## Every supported Python x Django pair (fast suite); MATRIX="3.10-5.2 3.13-6.1" picks some.
MATRIX ?=
matrix: venv
	PATH="$(CURDIR)/$(VENV)/bin:$$(ls -d $(HOME)/.pyenv/versions/3.1[0-3]*/bin | tr '\n' ':')$$PATH" \
	  $(VENV)/bin/nox --error-on-missing-interpreters \
	  $(if $(MATRIX),-s $(foreach p,$(MATRIX),"tests(python='$(word 1,$(subst -, ,$(p)))', django='$(word 2,$(subst -, ,$(p)))')"))

## The demo site against a real local Airflow: AIRFLOW=3 (default), 2, or fake (no Airflow, starts in seconds).
AIRFLOW ?= 3
demo: venv
	@AIRFLOW=$(AIRFLOW) VENV=$(VENV) scripts/demo.sh

## The benchmarks on SQLite and PostgreSQL (started if none is running): a table, and docs/benchmarks.md.
$(VENV)/.bench-installed: pyproject.toml $(VENV)/.installed
	VIRTUAL_ENV=$(VENV) $(UV) pip install -q --group bench
	touch $@

bench: venv $(VENV)/.bench-installed
	$(VENV)/bin/python -m benchmarks.run --db all

clean:
	rm -rf $(VENV) .nox .pytest_cache .mypy_cache .ruff_cache
