# The two commands of the README: `make run` and `make test` (PF-1).
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint messages

# One test process: `make test PYTEST_ARGS="-n 2 --dist load"` runs two (pytest-xdist; each gets
# its own test database, Redis database and files), but audit sealing waits for every running
# transaction of the PostgreSQL cluster, so the two processes hold back each other's sealing tests.
PYTEST_ARGS ?= --durations=15

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
