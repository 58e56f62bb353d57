# eventbook: `make run` serves on http://127.0.0.1:5000 (SQLite), `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
# `make run PORT=8080` (or an exported PORT) changes it; `make serve` leaves PORT to gunicorn (8000).
PORT ?= 5000

.PHONY: install run serve test test-fast bench lint format schemathesis postman clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $@

run: install instance/.env  ## development server on SQLite (instance/eventbook.db)
	FLASK_DEBUG=1 $(BIN)/flask --app wsgi db upgrade
	FLASK_DEBUG=1 $(BIN)/flask --app wsgi run --host 127.0.0.1 --port $(PORT)

# This clone's development settings, written once: config.py reads instance/.env after .env
# (the environment and .env win), so `make run` and every `flask --app wsgi ...` command of
# the README share a JWT key without anything being configured by hand.
instance/.env:
	mkdir -p instance
	$(PYTHON) -c 'import secrets; print("# Written by make run for development; config.py reads it after .env.\nJWT_SECRET_KEY=" + secrets.token_urlsafe(48))' > $@

serve: install  ## production server (gunicorn.conf.py); needs JWT_SECRET_KEY
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/gunicorn wsgi:app -c gunicorn.conf.py

test: install  ## the whole suite, a process per core (each test module in one); PostgreSQL too when TEST_DATABASE_URL is set
	$(BIN)/pytest -n auto --dist loadfile

test-fast: install  ## the suite without the tests marked slow (live servers, the README's commands)
	$(BIN)/pytest -n auto --dist loadfile -m "not slow"

# PostgreSQL at BENCH_DATABASE_URL and pgbench; Redis at 127.0.0.1:6379 when it answers (rate-limit counters).
bench: install  ## the performance benchmark (tests/perf/README.md); exits 1 on a MISS or an oversell
	$(BIN)/python tests/perf/bench.py

schemathesis: install  ## property-based API test against a live server
	bash .ci/schemathesis.sh

postman: install  ## Postman's converter and runner (npm, pinned in .ci/postman/) against a live server, as each role
	$(BIN)/python .ci/postman.py

lint: install  ## what CI checks (the code is laid out by hand, not by a formatter)
	$(BIN)/ruff check .

format: install  ## import order and the other fixes ruff can make
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache *.egg-info
