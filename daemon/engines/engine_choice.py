"""Which engine to run: what hardware and engines this machine has, and the choice `auto` makes.

GPU detection never imports torch unless it must (a multi-second import): `nvidia-smi` answers
name and memory per device; `/proc/driver/nvidia/gpus` says a driver sees GPUs; torch.cuda is
asked only when the driver sees GPUs but `nvidia-smi` is missing, to learn their memory.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

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
    vllm: str = ""  # version or "executable <path>", "" when missing
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class EngineChoice:
    engine: str  # "llamacpp", "vllm" or "openai"
    reason: str


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


def installed_engines() -> InstalledEngines:
    llamacpp = _version("xllamacpp")
    vllm = _version("vllm") if importlib.util.find_spec("vllm") is not None else ""
    if not vllm:
        # vLLM may live in a venv of its own (its pins clash with ours): an executable will do.
        executable = vllm_executable()
        vllm = f"executable {executable}" if executable else ""
    return InstalledEngines(llamacpp=llamacpp, vllm=vllm)


def vllm_executable() -> str:
    beside = Path(sys.executable).parent / "vllm"
    if beside.is_file():
        return str(beside)
    return shutil.which("vllm") or ""


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
) -> EngineChoice:
    """`requested` is taken as is unless it is "auto"; the reason says what decided."""
    if requested not in ENGINES:
        raise ValueError(f"unknown engine {requested!r}; choose one of {', '.join(ENGINES)}")
    if requested != "auto":
        return EngineChoice(requested, f"--engine {requested} was asked for")
    if remote_url:
        return EngineChoice("openai", f"a remote server is configured ({remote_url})")
    if not gpu.available:
        return EngineChoice("llamacpp", f"{gpu.describe()}: the embedded llama.cpp engine runs on the CPU")
    if not engines.vllm:
        return EngineChoice(
            "llamacpp", f"GPU found ({gpu.describe()}) but vllm is not installed (pip install 'nearcode[vllm]')"
        )
    if not vllm_model:
        # No weights are downloaded behind the user's back: vLLM needs a model named explicitly.
        return EngineChoice("llamacpp", "GPU and vllm found, but no --vllm-model is set (a HF id or local path)")
    return EngineChoice("vllm", f"GPU found ({gpu.describe()}) and vllm {engines.vllm} installed")
