# medrestore — the two entry points: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
OUT ?= results/demo

.PHONY: demo test test-slow test-all lint docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# the demo needs the package and its raw-data readers only (no test, docs or benchmark extras)
$(DEMO_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[raw]'
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/medrestore demo -o $(OUT)

lint: $(STAMP)
	$(BIN)/lint-imports

test: $(STAMP) lint
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q

test-all: $(STAMP) lint
	$(BIN)/python -m pytest -q

docs: $(STAMP)
	$(BIN)/python -m mkdocs build --strict --site-dir build/site

clean:
	rm -rf $(VENV) results build src/*.egg-info
