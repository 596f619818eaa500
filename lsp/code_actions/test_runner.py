"""Run generated Python tests, sandboxed, in a temporary copy of the project.

The copy (project_copy.py: regular files only, never through a link, size-capped) holds the project
plus the editor's unsaved text of the file under test and the new test file, so nothing in the
user's tree is touched. The run happens in the sandbox of sandbox.py (no network, read-only system
and home, scrubbed environment, resource and output limits, nothing left running), and only after
the user agreed (run_consent.py). When no sandbox can be made, or the project's interpreter has no
pytest, the tests are not run and the result says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from nearcode.lsp.code_actions import sandbox_boot
from nearcode.lsp.code_actions.project_copy import copy_project
from nearcode.lsp.code_actions.sandbox import (
    BOOT,
    STAGE,
    Limits,
    SandboxPlan,
    process_cap,
    sandbox_argv,
)
from nearcode.shared import privacy
from nearcode.shared.isolation import isolation_tools
from nearcode.shared.protocol.editor import TestOutcome

RUN_TIMEOUT_S = 60.0
OUTPUT_TAIL_BYTES = 64 * 1024  # what is kept of the output (its end: where the summary is)


@dataclass(frozen=True)
class TestRun:
    __test__ = False  # not a pytest test class
    outcome: TestOutcome  # "passed", "failed", "error" (could not finish), "not run"
    summary: str  # pytest's last line, or what went wrong
    output: str  # the tail of the output
    elapsed_s: float
    sandbox: str = ""  # "bubblewrap" or "unshare"


def interpreter(root: Path) -> str:
    """The project's own virtualenv when it has one (its dependencies), else ours."""
    for candidate in (root / ".venv" / "bin" / "python", root / "venv" / "bin" / "python"):
        if candidate.exists():
            return str(candidate)
    return sys.executable


def _prepare(temp: Path, root: Path, files: dict[Path, str]) -> tuple[Path, Path]:
    copy, boot = temp / "project", temp / "boot"
    copy_project(root, copy)
    for path, text in files.items():
        target = copy / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            target.unlink()  # never write through whatever is there
        target.write_text(text, encoding="utf-8")
    boot.mkdir()
    for source in (STAGE, BOOT, Path(privacy.__file__)):
        (boot / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    return copy, boot


async def _read_capped(stream: asyncio.StreamReader, cap: int) -> tuple[bytes, bool]:
    """The output's tail, and whether it went over `cap` (the caller then stops the run)."""
    kept, total = bytearray(), 0
    while chunk := await stream.read(1 << 16):
        total += len(chunk)
        kept += chunk
        if len(kept) > OUTPUT_TAIL_BYTES:
            del kept[: len(kept) - OUTPUT_TAIL_BYTES]
        if total > cap:
            return bytes(kept), True
    return bytes(kept), False


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def _end(process: asyncio.subprocess.Process) -> int:
    """Kill what is left and collect the exit code. The output is drained to its end first:
    asyncio's wait() returns only once the pipe is closed, and a reader that stopped at the output
    cap left it paused."""
    _kill_group(process.pid)  # the PID namespace took the rest with it; this is the backstop
    assert process.stdout is not None
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_discard(process.stdout), 10)
    return await process.wait()


async def _discard(stream: asyncio.StreamReader) -> None:
    while await stream.read(1 << 16):
        pass


async def run_python_tests(
    root: Path,
    framework: str,
    files: dict[Path, str],
    test_path: Path,
    mode: str = privacy.LOCAL_ONLY,
    timeout_s: float = RUN_TIMEOUT_S,
    limits: Limits | None = None,
    prefer: str = "",
) -> TestRun:
    """Run `test_path` in a sandboxed copy of `root` where `files` (absolute paths under root)
    have the given text. `prefer="unshare"` skips bubblewrap (the fallback's own tests)."""
    started = time.monotonic()
    tools = await asyncio.to_thread(isolation_tools)
    if not tools.available or (prefer == "unshare" and not tools.unshare):
        return TestRun("not run", f"not run: no sandbox: {tools.problem or 'unshare does not work here'}", "", 0.0)
    python = interpreter(root)
    limits = limits or Limits(cpu_seconds=int(timeout_s))
    with tempfile.TemporaryDirectory(prefix="nearcode-tests-") as temp_name:
        temp = Path(temp_name)
        copy, boot = await asyncio.to_thread(_prepare, temp, root, files)
        src = [str(copy / "src")] if (copy / "src").is_dir() else []
        plan = SandboxPlan(copy, boot, python, (str(boot / Path(privacy.__file__).name), mode, framework,
                                                 str(test_path.relative_to(root))), (str(copy), *src), limits)  # fmt: skip
        argv, env, kind = sandbox_argv(tools, plan, prefer)
        with process_cap(limits.processes) as cap:
            process = await asyncio.create_subprocess_exec(
                *cap.launch(argv), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip
            assert process.stdout is not None
            try:
                out, flooded = await asyncio.wait_for(_read_capped(process.stdout, limits.output_bytes), timeout_s)
            except (TimeoutError, asyncio.CancelledError) as exc:
                await asyncio.shield(_end(process))
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return TestRun("error", f"timed out after {timeout_s:.0f}s", "", time.monotonic() - started, kind)
            code = await _end(process)
        output = out.decode(errors="replace").replace(str(copy) + os.sep, "")
    elapsed = time.monotonic() - started
    tail = "\n".join(output.splitlines()[-25:])
    if flooded:
        return TestRun("error", f"stopped: more than {limits.output_bytes >> 20} MiB of output", tail, elapsed, kind)
    if code == sandbox_boot.NO_PYTEST:
        return TestRun("not run", f"not run: pytest is not installed in {python}", tail, elapsed, kind)
    return TestRun(_outcome(framework, code, output), _summary(output, code), tail, elapsed, kind)


def _outcome(framework: str, code: int | None, output: str) -> TestOutcome:
    if framework == "pytest":
        if code is None or code not in (0, 1):
            return "error"
        return "passed" if code == 0 else "failed"
    if code == 0:
        return "passed"
    return "failed" if re.search(r"^FAILED \(.*failures=", output, re.M) else "error"


def _summary(output: str, code: int | None) -> str:
    for line in reversed(output.strip().splitlines()):
        line = line.strip().strip("=").strip()
        if re.search(r"\b(passed|failed|error|errors|no tests ran)\b|^OK\b|^FAILED\b|^Ran \d+", line):
            return line
    if code is not None and (code < 0 or code > 128):
        number = -code if code < 0 else code - 128
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(number).name}"
    return f"exit code {code}"
