"""`nearcode engine install native`: the embedded engine built for this CPU (daemon/engines/native_build.py).

`make run` calls it with `--if-useful`: a machine without a compiler, or whose CPU cannot be told,
keeps the generic build and starts as before; a failed build says why and keeps it too.
"""

from __future__ import annotations

import argparse
import sys
import time

from nearcode.daemon.engines.native_build import (
    NativeBuildError,
    build_wheel,
    cached_wheel,
    install_wheel,
    missing_toolchain,
    plan,
)
from nearcode.daemon.model_install import requirements_dir


def run_native_install(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        native = plan(requirements_dir())
    except (NativeBuildError, OSError) as exc:
        print(f"nearcode: {exc}", file=sys.stderr)
        return 1
    print(f"native: {native.describe()}")
    if not native.cpu or not native.missed:
        return 0 if native.cpu or args.if_useful else 1
    wheel = cached_wheel(native)
    missing = [] if wheel is not None else missing_toolchain()
    if missing:
        print(f"native: cannot build here: {', '.join(missing)} not found; the generic build stays")
        return 0 if args.if_useful else 1
    if args.dry_run:
        print(f"native: would {'install ' + str(wheel) if wheel else 'build ' + native.signature + ' and install it'}")
        return 0
    try:
        features = install_wheel(build_wheel(native, requirements_dir()))
    except NativeBuildError as exc:
        print(f"nearcode: {exc}", file=sys.stderr)
        return 1
    if not native.missed <= features:
        print(f"nearcode: the installed build still lacks {', '.join(sorted(native.missed - features))}",
              file=sys.stderr)
        return 1
    print(f"native: installed in {time.monotonic() - started:.0f} s; the build now uses {', '.join(sorted(features))}")
    return 0
