# The two commands of the README: `make run` and `make test` (PF-1).
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint messages

# Tests run in parallel processes (pytest-xdist), one per core and at most 4: each gets its own
# test database, Redis database, MEDIA_ROOT and PLUGINS_ROOT (tests/plugin.py); `--dist load` hands
# the tests out in collection order. One process: `make test PYTEST_ARGS="-n 0 --durations=15"`.
PYTEST_ARGS ?= -n auto --maxprocesses=4 --dist load --durations=15

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
