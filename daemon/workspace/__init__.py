"""The workspace index: one per workspace folder, in the daemon, shared by every editor that has
the folder open (docs/architecture.md). `WorkspaceRegistry.for_path(abs_path)` finds the index of a
file; `WorkspaceIndex` answers what is defined where (daemon/workspace/index.py)."""

from nearcode.daemon.workspace.index import WorkspaceIndex
from nearcode.daemon.workspace.model import Definition, ImportRef, IndexLimits, IndexStatus
from nearcode.daemon.workspace.registry import WorkspaceRegistry

__all__ = ["Definition", "ImportRef", "IndexLimits", "IndexStatus", "WorkspaceIndex", "WorkspaceRegistry"]
