"""Fixtures for the workspace index: a registry with the real watchdog observer and worker thread
on temporary folders, and a helper that waits for the index to catch up (and says how long)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nearcode.daemon.workspace import IndexLimits, WorkspaceIndex, WorkspaceRegistry

# What every "reflected within one second" assertion allows.
WITHIN_S = 1.0


def wait_for(condition: Callable[[], object], timeout_s: float = 10.0) -> float:
    """Seconds until `condition()` was true; fails after timeout_s."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not true after {timeout_s} s")
        time.sleep(0.005)
    return time.monotonic() - started


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def registry() -> Iterator[WorkspaceRegistry]:
    registry = WorkspaceRegistry(IndexLimits(grace_s=0.2))
    yield registry
    registry.close()


@pytest.fixture
def open_index(registry: WorkspaceRegistry) -> Callable[[Path], WorkspaceIndex]:
    """Register a folder for a client (this process) and wait for its first scan."""

    def opener(root: Path) -> WorkspaceIndex:
        registry.set_folders("test-client", os.getpid(), [str(root)])
        index = registry.index_at(root)
        assert index is not None
        wait_for(lambda: index.status.state != "scanning")
        return index

    return opener
