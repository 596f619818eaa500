"""The test helpers leave no process behind when a wrapped daemon fails to start: a failed run of
the system-level privacy test once left its namespace bridge and stand-in engine running."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support import env_for, new_runtime_dir, start_daemon


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("exit_code", ["exit 3", "sleep 300"])  # the wrapper exits / never answers
def test_a_wrapped_daemon_that_fails_to_start_takes_its_helpers_with_it(tmp_path: Path, exit_code: str) -> None:
    pid_file = tmp_path / "helper.pid"
    # The wrapper starts a helper (as the namespace wrapper starts its bridge and stand-in engine),
    # then fails: it exits, or never serves.
    command = ["sh", "-c", f"sleep 300 & echo $! > {pid_file}; {exit_code}"]
    env = env_for(new_runtime_dir())
    with pytest.raises(RuntimeError):
        start_daemon(env, command=command, timeout_s=3, log=tmp_path / "daemon.log")
    helper = int(pid_file.read_text())
    for _ in range(50):  # SIGKILL is delivered at once; reaping by init can take a moment
        if not _alive(helper):
            break
        time.sleep(0.1)
    assert not _alive(helper), f"helper {helper} outlived the failed start"
