# The two commands of the README: `make run` and `make test` (PF-1).
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint messages

# pytest-xdist: one test process per core (each with its own test database, Redis database and
# live server). Tests go out one by one in collection order, so each process still runs the tests
# that commit (and flush) after those that roll back. `make test PYTEST_ARGS=...` replaces it.
PYTEST_ARGS ?= -n auto --dist load --durations=15

run:
	@scripts/bootstrap.sh run
	$(PY) manage.py lowcode up

test:
	@scripts/bootstrap.sh test
	$(VENV)/bin/lint-imports
	$(PY) -m pytest $(PYTEST_ARGS)

lint:
	$(VENV)/bin/ruff check .

# Refresh the translation catalogues after changing user-facing strings.
messages:
	$(PY) manage.py makemessages -l zh_Hans --ignore=.venv --ignore=.lowcode
	$(PY) manage.py compilemessages -l zh_Hans --ignore=.venv
