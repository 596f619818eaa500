#!/usr/bin/env bash
# Embedded llama.cpp against vLLM-CPU, same model, same cases, one machine (docs/models.md):
# single-shot public cases, steady-state typing (typing-warm) and four editors at once
# (concurrency4), each engine's daemon started first and timed to ready, its memory measured.
# One engine at a time (2 cores); /proc/loadavg is recorded before and after every run, because
# latency measured while others compute is inflated. ~45 min on an idle 2-core machine.
#
#   make bench-vllm                  # = bash bench/vllm_vs_llamacpp.sh
#   LIMIT=20 bash bench/vllm_vs_llamacpp.sh   # a quick look
#
# Needs `make install-vllm` (vLLM's environment and the converted model). Reports, results JSONs
# and daemon logs go to $BENCH_HOME/results (default /tmp/bench/results), never into the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
LIMIT=${LIMIT:-80}
MODES=${MODES:-"single typing-warm concurrency4"}
ENGINES=${ENGINES:-"llamacpp vllm"}
HOME_DIR=${BENCH_HOME:-/tmp/bench}
STAMP=$(date +%Y%m%d-%H%M%S)
SUMMARY="$HOME_DIR/results/engines-$STAMP.md"
mkdir -p "$HOME_DIR/results"

{
  echo "# embedded llama.cpp vs vLLM-CPU ($STAMP, $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo))"
  echo
  echo "vLLM: $(.venv/bin/nearcode doctor 2>/dev/null | grep '^vllm:' | cut -d: -f2- | xargs)"
  echo
} > "$SUMMARY"

for mode in $MODES; do
  results=()
  for engine in $ENGINES; do
    before=$(cat /proc/loadavg)
    $PY bench/compare.py --only ours --engine "$engine" --mode "$mode" --limit "$LIMIT" \
      | tee "$HOME_DIR/results/engines-$STAMP-$mode-$engine.log" \
      || echo "- $mode / $engine: compare.py reported a failure (see its log)" >> "$SUMMARY.load"
    after=$(cat /proc/loadavg)
    echo "- $mode / $engine: loadavg before \`$before\`, after \`$after\`" >> "$SUMMARY.load"
    if [ "$mode" = single ]; then pattern="lsp-nearcode-$engine-????????-??????.json"
    else pattern="lsp-nearcode-$engine-*-$mode.json"; fi
    results+=("$(ls -t "$HOME_DIR"/results/$pattern | head -1)")
  done
  echo "## $mode" >> "$SUMMARY"
  $PY bench/compare.py --results "${results[@]}" | sed -n '/^| metric/,/^$/p' >> "$SUMMARY"
done
{ echo "## load"; echo; cat "$SUMMARY.load"; } >> "$SUMMARY"
rm -f "$SUMMARY.load"
echo
cat "$SUMMARY"
echo "(written to $SUMMARY)"
