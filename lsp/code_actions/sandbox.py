"""The sandbox generated tests run in (a model wrote them: they are untrusted code).

What the tests can do, whichever tool builds the sandbox (bubblewrap first, else unshare; neither:
they do not run, and the user is told why):

- **no network**: a network namespace of their own, with nothing but loopback (not even the
  machine's loopback: a server on this machine's 127.0.0.1 is out of reach, as are abstract unix
  sockets); /run (where daemons' unix sockets live: docker, dbus, nearcode's own) is an empty
  tmpfs, and a fresh /tmp hides the sockets kept there;
- **read-only system and home**: everything is mounted read-only but a fresh /tmp (size-capped)
  and the project's temporary copy; the home folder's credential stores (.ssh, .aws, .gnupg, …),
  nearcode's runtime folder (the daemon's token) and state are hidden behind empty mounts;
- **a scrubbed environment**: locale and paths only, no keys, tokens or cloud variables;
- **limits**: CPU seconds, address space, processes, file size, open files; output beyond a cap
  stops the run; a wall-clock timeout stops it too;
- **nothing survives**: a PID namespace whose init is the test run (when it exits, the kernel
  kills everything left in it, detached or not), `--die-with-parent`, and a kill of the whole
  process group when the run ends.

The tests run as the user, in a user namespace with no capabilities. The kernel exempts root from
the process-count limit, so as root the run also goes into a pids cgroup with the same cap when one
can be made (`ProcessCap`); the other limits bind root too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from nearcode.shared.isolation import IsolationTools, scrubbed_environment

STAGE = Path(__file__).with_name("sandbox_stage.py")
BOOT = Path(__file__).with_name("sandbox_boot.py")
MIB = 1 << 20

# Hidden inside the sandbox when they exist in the home folder.
HOME_SECRETS = (".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker", ".config/gcloud", ".config/gh",
                ".netrc", ".pypirc", ".npmrc", ".git-credentials", ".pgpass", ".local/state/nearcode")  # fmt: skip


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 60
    memory_bytes: int = 3 << 30  # address space, per process
    processes: int = 64
    file_bytes: int = 64 * MIB
    open_files: int = 1024
    tmp_bytes: int = 256 * MIB
    output_bytes: int = 4 * MIB  # more than this on stdout/stderr stops the run

    def rlimits(self) -> dict[str, int]:
        return {"RLIMIT_CPU": self.cpu_seconds, "RLIMIT_AS": self.memory_bytes, "RLIMIT_NPROC": self.processes,
                "RLIMIT_FSIZE": self.file_bytes, "RLIMIT_NOFILE": self.open_files, "RLIMIT_CORE": 0}  # fmt: skip


@dataclass(frozen=True)
class SandboxPlan:
    copy: Path  # the project's temporary copy: the only writable folder (and /tmp)
    boot: Path  # the boot script and the guard, visible read-only
    interpreter: str
    boot_args: tuple[str, ...]
    pythonpath: tuple[str, ...]
    limits: Limits = field(default_factory=Limits)

    @property
    def interpreters(self) -> list[str]:
        """Where the two interpreters live, when that is under /tmp (fresh in the sandbox): the
        project's virtualenv and nearcode's own Python, shown read-only."""
        venv = Path(self.interpreter).parent.parent
        folders = {str(venv), sys.prefix, sys.base_prefix}
        return sorted(f for f in folders if f.startswith("/tmp/") and Path(f).is_dir())


def hidden_paths() -> tuple[list[str], list[str]]:
    """Folders and files to hide behind empty mounts: credential stores, nearcode's own files."""
    home = Path.home()
    candidates = [home / name for name in HOME_SECRETS]
    runtime = os.environ.get("NEARCODE_RUNTIME_DIR") or os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        candidates.append(Path(runtime))
    candidates.append(Path(os.environ.get("XDG_STATE_HOME") or home / ".local" / "state") / "nearcode")
    folders, files = [], []
    for path in candidates:
        if path.is_symlink() or str(path).startswith(("/tmp/", "/run/")):
            continue  # /tmp and /run are fresh and empty in the sandbox anyway
        if path.is_dir():
            folders.append(str(path))
        elif path.is_file():
            files.append(str(path))
    return folders, files


def sandbox_environment(plan: SandboxPlan) -> dict[str, str]:
    locale = {k: v for k, v in os.environ.items() if k in ("LANG", "LANGUAGE", "TZ") or k.startswith("LC_")}
    return scrubbed_environment(locale, {
        "PATH": f"{Path(plan.interpreter).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(Path.home()),
        "TMPDIR": "/tmp",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "PYTHONPATH": os.pathsep.join(plan.pythonpath),
        "PYTHONDONTWRITEBYTECODE": "1",
        "NEARCODE_SANDBOX": "1",
        "NEARCODE_SANDBOX_CWD": str(plan.copy),
    })


def _inner(plan: SandboxPlan, mounts: dict[str, object] | None) -> list[str]:
    stage = [sys.executable, "-I", "-S", str(plan.boot / STAGE.name), "--limits", json.dumps(plan.limits.rlimits())]
    if mounts is not None:
        stage += ["--mounts", json.dumps(mounts)]
    return [*stage, "--", plan.interpreter, str(plan.boot / BOOT.name), *plan.boot_args]


def bubblewrap_argv(tools: IsolationTools, plan: SandboxPlan) -> list[str]:
    folders, files = hidden_paths()
    argv = [tools.bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]  # fmt: skip
    if Path("/run").is_dir() and not Path("/run").is_symlink():
        argv += ["--tmpfs", "/run", "--remount-ro", "/run"]
    if tools.bwrap_size:
        argv += ["--size", str(plan.limits.tmp_bytes)]
    argv += ["--tmpfs", "/tmp", "--bind", str(plan.copy), str(plan.copy), "--ro-bind", str(plan.boot), str(plan.boot)]
    for folder in plan.interpreters:
        argv += ["--ro-bind", folder, folder]
    for folder in folders:
        argv += ["--tmpfs", folder, "--remount-ro", folder]
    for file in files:
        argv += ["--ro-bind", "/dev/null", file]
    argv += ["--chdir", str(plan.copy), "--clearenv"]
    for name, value in sandbox_environment(plan).items():
        argv += ["--setenv", name, value]
    return [*argv, "--", *_inner(plan, None)]


def unshare_argv(tools: IsolationTools, plan: SandboxPlan) -> list[str]:
    folders, files = hidden_paths()
    if Path("/run").is_dir() and not Path("/run").is_symlink():
        folders.insert(0, "/run")
    mounts = {"writable": [str(plan.copy)], "visible": [str(plan.boot), *plan.interpreters], "tmp_bytes": plan.limits.tmp_bytes,
              "mask_dirs": folders, "mask_files": files}  # fmt: skip
    argv = [tools.unshare, "--user", "--map-root-user", "--mount", "--net", "--pid", "--ipc", "--uts",
            "--fork", "--kill-child", "--mount-proc", "--"]  # fmt: skip
    return [*argv, *_inner(plan, mounts)]


def sandbox_argv(tools: IsolationTools, plan: SandboxPlan, prefer: str = "") -> tuple[list[str], dict[str, str], str]:
    """The command, its environment, and the tool's name ("bubblewrap" or "unshare")."""
    use_bwrap = bool(tools.bwrap) and prefer != "unshare"
    if use_bwrap:
        return bubblewrap_argv(tools, plan), {"PATH": "/usr/bin:/bin"}, "bubblewrap"
    if not tools.unshare:
        raise RuntimeError(tools.problem or "no sandbox tool")
    return unshare_argv(tools, plan), sandbox_environment(plan), "unshare"


class ProcessCap:
    """Root only: a pids cgroup (v1 `pids` hierarchy, where one is writable) holding the run, with
    `pids.max` at the limit, since the kernel exempts root from RLIMIT_NPROC. Its `launch` prefix
    puts the sandbox into the cgroup before it starts; `close` kills whatever is still in it."""

    ROOTS = (Path("/sys/fs/cgroup/pids"),)

    def __init__(self, limit: int) -> None:
        self.path: Path | None = None
        if os.geteuid() != 0:
            return
        for root in self.ROOTS:
            candidate = root / f"nearcode-tests-{uuid.uuid4().hex[:12]}"
            try:
                candidate.mkdir()
                (candidate / "pids.max").write_text(str(limit))
            except OSError:
                with contextlib.suppress(OSError):
                    candidate.rmdir()
                continue
            self.path = candidate
            return

    def launch(self, argv: list[str]) -> list[str]:
        if self.path is None:
            return argv
        join = 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"'
        return ["/bin/sh", "-c", join, "sh", str(self.path), *argv]

    def close(self) -> None:
        if self.path is None:
            return
        for _ in range(50):
            with contextlib.suppress(OSError):
                pids = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
        with contextlib.suppress(OSError):
            self.path.rmdir()


@contextlib.contextmanager
def process_cap(limit: int) -> Iterator[ProcessCap]:
    cap = ProcessCap(limit)
    try:
        yield cap
    finally:
        cap.close()
