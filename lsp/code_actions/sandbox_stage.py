"""The first process inside a test-run sandbox: finish the isolation, then become the test run.

    python -I -S sandbox_stage.py --limits JSON [--mounts JSON] -- ARGV...

Runs inside the namespaces (bubblewrap's, or unshare's) before any generated code:

- `--mounts` (unshare only; bubblewrap does this itself): everything read-only, a fresh size-capped
  /tmp, the project copy writable and the boot folder visible, credential folders of the home
  folder hidden behind empty read-only mounts, then no capabilities left and no way to gain any.
- `--limits`: resource limits (CPU seconds, address space, processes, file size, open files, core
  dumps), hard limits too, so the tests cannot raise them back.

Then it execs ARGV (the project's interpreter running the boot script). Stdlib only, run with
-I -S: nothing from the project is imported here.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys
from typing import Any

_libc = ctypes.CDLL(None, use_errno=True)
_SYS_MOUNT_SETATTR = 442  # the same number on every architecture (generic syscall table)
_AT_FDCWD = -100
_AT_RECURSIVE = 0x8000
_MOUNT_ATTR_RDONLY = 0x1
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
_PR_CAPBSET_DROP, _PR_SET_SECUREBITS, _PR_SET_NO_NEW_PRIVS, _PR_CAP_AMBIENT = 24, 28, 38, 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
# noroot (+locked), no_setuid_fixup (+locked), keep_caps_locked: uid 0 in the namespace gains nothing on exec
_SECUREBITS = 0x1 | 0x2 | 0x4 | 0x8 | 0x20


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]  # fmt: skip


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _bytes(value: str | None) -> bytes | None:
    return value.encode() if value is not None else None


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    result = _libc.mount(_bytes(source), target.encode(), _bytes(fstype), ctypes.c_ulong(flags), _bytes(data))
    _check(result, f"mount {target}")


def _set_readonly(path: str, readonly: bool, recursive: bool) -> None:
    attr = _MountAttr(_MOUNT_ATTR_RDONLY if readonly else 0, 0 if readonly else _MOUNT_ATTR_RDONLY, 0, 0)
    flags = _AT_RECURSIVE if recursive else 0
    result = _libc.syscall(_SYS_MOUNT_SETATTR, _AT_FDCWD, path.encode(), flags, ctypes.byref(attr), ctypes.sizeof(attr))
    _check(result, f"mount_setattr {path}")


def _bind(fd: int, target: str, writable: bool) -> None:
    os.makedirs(target, exist_ok=True)
    _mount(f"/proc/self/fd/{fd}", target, None, _MS_BIND)
    _set_readonly(target, not writable, recursive=False)


def _mounts(plan: dict[str, Any]) -> None:
    kept = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in [*plan["writable"], *plan["visible"]]}
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    _set_readonly("/", True, recursive=True)
    _mount("tmpfs", "/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV, f"size={int(plan['tmp_bytes'])},mode=1777")
    for path in plan["writable"]:
        _bind(kept[path], path, writable=True)
    for path in plan["visible"]:
        _bind(kept[path], path, writable=False)
    for folder in plan["mask_dirs"]:
        _mount("tmpfs", folder, "tmpfs", _MS_RDONLY | _MS_NOSUID | _MS_NODEV, "size=4k,mode=0")
    for file in plan["mask_files"]:
        _mount("/dev/null", file, None, _MS_BIND)
    for fd in kept.values():
        os.close(fd)


def _drop_privileges() -> None:
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    for cap in range(64):
        if _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # past the last capability this kernel knows
    _libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    _check(_libc.prctl(_PR_SET_SECUREBITS, _SECUREBITS, 0, 0, 0), "securebits")


def _limits(limits: dict[str, int]) -> None:
    for name, value in limits.items():
        resource.setrlimit(getattr(resource, name), (value, value))


def main() -> None:
    args = sys.argv[1:]
    split = args.index("--")
    options, argv = args[:split], args[split + 1 :]
    values = dict(zip(options[::2], options[1::2], strict=True))
    if "--mounts" in values:
        _mounts(json.loads(values["--mounts"]))
        _drop_privileges()
    _limits(json.loads(values["--limits"]))
    os.chdir(os.environ.get("NEARCODE_SANDBOX_CWD", "/"))
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
