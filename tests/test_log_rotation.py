"""daemon.log is rotated at the file-descriptor level (daemon/log_rotation.py), so C code writing to
stderr (llama.cpp) rotates with Python's logging (fast tier: a child process, no model)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = r"""
import ctypes, logging, os, sys
from pathlib import Path
from nearcode.daemon.log_rotation import StderrRotation

path = Path(sys.argv[1])
logging.basicConfig(level=logging.INFO, format="%(message)s")
rotation = StderrRotation(path, max_bytes=10_000, backups=3)
libc = ctypes.CDLL(None)
for round in range(12):
    logging.info("python line %d %s", round, "x" * 2000)
    os.write(2, b"c-level line " + str(round).encode() + b" " + b"y" * 2000 + b"\n")
    libc.fflush(None)
    rotation.rotate_if_due()
logging.info("python after the last rotation")
os.write(2, b"c-level after the last rotation\n")
print("stdout follows too", flush=True)
"""


def test_rotation_keeps_the_log_bounded_and_every_writer_follows(tmp_path: Path) -> None:
    log = tmp_path / "daemon.log"
    with open(log, "ab") as out:
        subprocess.run([sys.executable, "-c", CHILD, str(log)], stdout=out, stderr=out, check=True, timeout=60)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["daemon.log", "daemon.log.1", "daemon.log.2", "daemon.log.3"]
    for name in files[1:]:
        assert (tmp_path / name).stat().st_size < 10_000 + 4_200  # one round past the limit at most
    current = log.read_text()
    assert "python after" in current and "c-level after" in current and "stdout follows too" in current
    assert all((tmp_path / name).stat().st_mode & 0o777 == 0o600 for name in ["daemon.log"])


def test_a_daemon_writing_elsewhere_is_left_alone(tmp_path: Path) -> None:
    code = (
        "from pathlib import Path; from nearcode.daemon.log_rotation import StderrRotation; import sys;"
        "r = StderrRotation(Path(sys.argv[1]), max_bytes=1); print(r.rotate_if_due())"
    )
    (tmp_path / "daemon.log").write_text("x" * 100)
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "daemon.log")], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False" and sorted(p.name for p in tmp_path.iterdir()) == ["daemon.log"]
