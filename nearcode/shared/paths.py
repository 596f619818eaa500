"""Where nearcode keeps its files: the per-user runtime dir (socket, address file), caches and state.

The runtime dir holds the daemon's bearer token: it must be a real directory (not a symbolic link,
which another user could point anywhere, or swap), owned by this user and private (0700). A
directory that fails the check is refused, never repaired by following it."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


def runtime_dir() -> Path:
    """Private per-user directory holding the daemon's socket, address file and lock.

    Unix socket paths are limited to ~107 bytes, so this must stay short: XDG_RUNTIME_DIR or /tmp.
    """
    explicit = os.environ.get("NEARCODE_RUNTIME_DIR")
    if explicit:
        path = Path(explicit)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        path = Path(os.environ["XDG_RUNTIME_DIR"]) / "nearcode"
    else:
        path = Path(tempfile.gettempdir()) / f"nearcode-{os.getuid()}"
    return ensure_private_dir(path)


def cache_dir() -> Path:
    """Per-user cache for assembled models (large, rebuildable)."""
    explicit = os.environ.get("NEARCODE_CACHE_DIR")
    if explicit:
        path = Path(explicit)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "nearcode"
    path.mkdir(parents=True, exist_ok=True)
    return path


def state_dir() -> Path:
    """Per-user state (the cloud audit log, the workspaces where generated tests may always run):
    `$XDG_STATE_HOME/nearcode`, else `~/.local/state/nearcode`; created 0700. Never a project's."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return ensure_private_dir(Path(base) / "nearcode")


def insight_dir() -> Path:
    """The local insight database (lsp/insight/): `$NEARCODE_INSIGHT_DIR`, else `<cache>/insight`.
    Private: it is a record of the user's own work, shared by every editor of this user."""
    explicit = os.environ.get("NEARCODE_INSIGHT_DIR")
    return ensure_private_dir(Path(explicit) if explicit else cache_dir() / "insight")


def ensure_private_dir(path: Path) -> Path:
    """Create `path` as 0700; refuse a symbolic link, a non-directory, or a directory owned by
    someone else (another user could read the token, or swap the directory under us)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    info = os.lstat(path)  # lstat: a link is judged as a link, not as what it points to
    if stat.S_ISLNK(info.st_mode):
        raise PermissionError(
            f"{path} is a symbolic link; nearcode keeps its token only in a real directory "
            "(remove the link, or set NEARCODE_RUNTIME_DIR to a private directory)"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise PermissionError(f"{path} is not a directory; set NEARCODE_RUNTIME_DIR to a private directory")
    if info.st_uid != os.getuid():
        raise PermissionError(f"{path} belongs to another user (uid {info.st_uid}); set NEARCODE_RUNTIME_DIR")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, 0o700)
    return path


def address_file() -> Path:
    return runtime_dir() / "daemon.json"


def lock_file() -> Path:
    return runtime_dir() / "daemon.lock"


def socket_path() -> Path:
    return runtime_dir() / "daemon.sock"


def daemon_log_file() -> Path:
    return runtime_dir() / "daemon.log"
