# The two front-door commands are `make demo` and `make test`; everything else is a helper.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Where the demo keeps all of its state (Feast registry and stores, MLflow, decision log).
export NBA_HOME ?= $(CURDIR)/.nba

.PHONY: demo test lint typecheck unit venv system-deps clean

venv: $(STAMP)

# pip's and the build's own chatter goes to $(VENV)/install.log, shown only if it fails.
$(STAMP): pyproject.toml
	@echo "installing the engine and its packages into $(VENV) (about a minute)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip > $(VENV)/install.log 2>&1 \
	  && $(BIN)/python -m pip install --quiet -e '.[dev]' >> $(VENV)/install.log 2>&1 \
	  || { cat $(VENV)/install.log; echo "installing failed: see the lines above"; exit 1; }
	@touch $(STAMP)

demo: $(STAMP)
	@$(BIN)/nba demo

test: $(STAMP) system-deps lint typecheck
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# Debian packages the tests start for real: a Redis online store, a PostgreSQL decision
# log, a Java runtime for Spark (local[2]) and Chromium for the agent desk's browser test
# (Playwright drives /usr/bin/chromium). Installed with apt-get when missing.
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v java >/dev/null 2>&1 || missing="$$missing openjdk-17-jre-headless"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages:$$missing (e.g. sudo apt-get install$$missing)"; exit 1; \
	  fi; \
	fi

clean:
	rm -rf $(VENV) .nba .pytest_cache .mypy_cache .ruff_cache
