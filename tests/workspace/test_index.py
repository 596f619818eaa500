"""The workspace index on real parts: real files in a temporary folder, watchdog's real inotify
events, the real worker thread and real tree-sitter. Each change must show within one second."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from nearcode.daemon.workspace import IndexLimits, WorkspaceIndex, WorkspaceRegistry
from tests.workspace.conftest import WITHIN_S, wait_for, write

Opener = Callable[[Path], WorkspaceIndex]


def _paths(index: WorkspaceIndex, name: str) -> list[str]:
    return sorted(d.path for d in index.definitions(name))


def test_a_saved_definition_appears_within_a_second(tmp_path: Path, open_index: Opener) -> None:
    write(tmp_path, "pkg/__init__.py", "")
    write(tmp_path, "pkg/models.py", "class User:\n    name: str = ''\n")
    index = open_index(tmp_path)
    assert _paths(index, "User") == ["pkg/models.py"] and index.status.state == "ready"

    write(tmp_path, "pkg/billing.py", 'def charge(user: "User", cents: int = 0) -> bool:\n    """Charge a user."""\n')
    seconds = wait_for(lambda: index.definitions("charge"))
    assert seconds < WITHIN_S, f"took {seconds:.2f} s"
    (charge,) = index.definitions("charge")
    assert charge.signature == 'def charge(user: "User", cents: int = 0) -> bool:' and charge.doc == "Charge a user."

    write(tmp_path, "pkg/billing.py", "def refund(cents: int) -> bool:\n    return True\n")  # edited in place
    seconds = wait_for(lambda: index.definitions("refund") and not index.definitions("charge"))
    assert seconds < WITHIN_S, f"took {seconds:.2f} s"
    assert index.file_imports("pkg/billing.py") == []


def test_renamed_moved_and_deleted_files_leave(tmp_path: Path, open_index: Opener) -> None:
    write(tmp_path, "src/a.py", "def alpha(): ...\n")
    write(tmp_path, "src/sub/b.py", "def beta(): ...\n")
    outside = tmp_path.parent / (tmp_path.name + "-outside")
    write(outside, "c.py", "def gamma(): ...\n")
    index = open_index(tmp_path / "")
    os.rename(tmp_path / "src/a.py", tmp_path / "src/renamed.py")
    assert wait_for(lambda: _paths(index, "alpha") == ["src/renamed.py"]) < WITHIN_S

    os.rename(tmp_path / "src/sub", tmp_path / "src/moved")  # a folder moved inside the workspace
    assert wait_for(lambda: _paths(index, "beta") == ["src/moved/b.py"]) < WITHIN_S

    shutil.move(str(tmp_path / "src/moved"), str(outside / "moved"))  # and out of it
    assert wait_for(lambda: not index.definitions("beta")) < WITHIN_S

    shutil.move(str(outside), str(tmp_path / "src/incoming"))  # a folder moved in from outside
    assert wait_for(lambda: _paths(index, "gamma") == ["src/incoming/c.py"]) < WITHIN_S

    os.unlink(tmp_path / "src/renamed.py")
    assert wait_for(lambda: not index.definitions("alpha")) < WITHIN_S
    shutil.rmtree(tmp_path / "src")
    assert wait_for(lambda: index.status.files == 0) < WITHIN_S


def test_denied_and_ignored_files_never_appear(tmp_path: Path, open_index: Opener) -> None:
    write(tmp_path, ".gitignore", "generated/\n*.tmp.py\n!keep.tmp.py\n")
    write(tmp_path, "lib/.gitignore", "local_*.py\n")
    write(tmp_path, ".nearcodeignore", "internal/\n")
    files = {
        "app.py": "def visible(): ...\n",
        "keep.tmp.py": "def kept(): ...\n",  # re-included by the negation
        "generated/models.py": "def generated_thing(): ...\n",
        "scratch.tmp.py": "def scratch_thing(): ...\n",
        "lib/local_settings.py": "def local_thing(): ...\n",
        "internal/billing.py": "def internal_thing(): ...\n",
        "secrets.py": "API_KEY = 'k'\ndef secret_thing(): ...\n",
        "config/.env.py": "def env_thing(): ...\n",
        "keys/ID_RSA.py": "def key_thing(): ...\n",
        "node_modules/lib/index.js": "export function vendored_thing() {}\n",
        ".venv/lib/site.py": "def venv_thing(): ...\n",
        "build/out.py": "def build_thing(): ...\n",
    }
    for name, text in files.items():
        write(tmp_path, name, text)
    index = open_index(tmp_path)
    hidden = ["generated_thing", "scratch_thing", "local_thing", "internal_thing", "secret_thing", "API_KEY",
              "env_thing", "key_thing", "vendored_thing", "venv_thing", "build_thing"]

    def leaked() -> list[str]:
        return [name for name in hidden if index.definitions(name)]

    assert index.definitions("visible") and index.definitions("kept") and leaked() == []
    assert index.text("secrets.py") is None and index.text("internal/billing.py") is None
    assert index.text("app.py") == files["app.py"]
    # Created after the scan: still never indexed.
    for name in ["generated/late.py", "internal/late.py", "late.tmp.py", ".env.late.py"]:
        write(tmp_path, name, "def late_hidden(): ...\n")
    write(tmp_path, "marker.py", "def marker(): ...\n")
    wait_for(lambda: index.definitions("marker"))
    assert not index.definitions("late_hidden") and leaked() == []
    # An ignore file that changes takes files out (and lets others in).
    write(tmp_path, ".nearcodeignore", "internal/\napp.py\n")
    assert wait_for(lambda: not index.definitions("visible")) < WITHIN_S
    write(tmp_path, ".gitignore", "*.tmp.py\n")
    # Settled, not first seen: the write truncates the file first, and for a moment no pattern
    # holds (scratch.tmp.py was seen then, under four test workers).
    assert wait_for(lambda: leaked() == ["generated_thing"]) < WITHIN_S
    assert index.status.skipped


def test_a_monorepo_root_nearcodeignore_applies_to_a_package_opened_alone(tmp_path: Path, open_index: Opener) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    write(tmp_path, ".nearcodeignore", "packages/api/private/\n*_secret.py\n")
    write(tmp_path, ".gitignore", "packages/*/generated/\n")
    package = tmp_path / "packages" / "api"
    write(package, "handlers.py", "def handle(): ...\n")
    write(package, "private/keys.py", "def private_thing(): ...\n")
    write(package, "auth_secret.py", "def secret_thing(): ...\n")
    write(package, "generated/api_pb.py", "def generated_thing(): ...\n")
    index = open_index(package)
    assert index.definitions("handle")
    assert not (index.definitions("private_thing") or index.definitions("secret_thing") or index.definitions("generated_thing"))
    write(package, "private/late.py", "def late_private(): ...\n")
    write(package, "marker.py", "def marker(): ...\n")
    wait_for(lambda: index.definitions("marker"))
    assert not index.definitions("late_private")


def test_an_unsaved_buffer_wins_and_a_closed_one_falls_back(tmp_path: Path, registry: WorkspaceRegistry,
                                                           open_index: Opener) -> None:
    path = write(tmp_path, "service.py", "def on_disk(): ...\n")
    index = open_index(tmp_path)
    assert registry.set_buffer("editor-a", str(path), "def in_buffer(x: int): ...\n", 1) is None
    assert wait_for(lambda: index.definitions("in_buffer") and not index.definitions("on_disk")) < WITHIN_S
    assert index.text("service.py") == "def in_buffer(x: int): ...\n" and index.open_buffers() == ["service.py"]

    write(tmp_path, "service.py", "def saved_meanwhile(): ...\n")  # the disk changes; the buffer still wins
    write(tmp_path, "marker.py", "def marker(): ...\n")
    wait_for(lambda: index.definitions("marker"))
    assert index.definitions("in_buffer") and not index.definitions("saved_meanwhile")

    assert registry.set_buffer("editor-b", str(path), "def from_b(): ...\n", 1) is None  # a second editor
    assert wait_for(lambda: index.definitions("from_b")) < WITHIN_S
    assert registry.set_buffer("editor-b", str(path), None, 2) is None  # b closes: a's buffer again
    assert wait_for(lambda: index.definitions("in_buffer")) < WITHIN_S
    assert registry.set_buffer("editor-a", str(path), None, 2) is None  # a closes: the disk again
    assert wait_for(lambda: index.definitions("saved_meanwhile") and not index.definitions("in_buffer")) < WITHIN_S
    assert index.open_buffers() == [] and index.text("service.py") == "def saved_meanwhile(): ...\n"

    assert registry.set_buffer("editor-a", str(tmp_path / "secrets.py"), "KEY = 1\n", 1) is not None
    assert registry.set_buffer("editor-a", str(tmp_path.parent / "elsewhere.py"), "x = 1\n", 1) is not None


def test_recent_edits_come_from_buffer_changes(tmp_path: Path, registry: WorkspaceRegistry, open_index: Opener) -> None:
    lines = [f"line_{i} = {i}" for i in range(40)]
    path = write(tmp_path, "edit.py", "\n".join(lines) + "\n")
    index = open_index(tmp_path)
    registry.set_buffer("e", str(path), "\n".join(lines) + "\n", 1)
    assert index.recent_edits(10) == []  # opening is not an edit
    lines[30] = "line_30 = 300"
    registry.set_buffer("e", str(path), "\n".join(lines) + "\n", 2)
    lines[5] = "line_5 = 50"
    registry.set_buffer("e", str(path), "\n".join(lines) + "\n", 3)
    assert [(p, s, e) for p, s, e, _ in index.recent_edits(10)] == [("edit.py", 5, 5), ("edit.py", 30, 30)]
    lines[5:5] = ["inserted_a = 1", "inserted_b = 2"]  # two lines above the older edit move it down
    registry.set_buffer("e", str(path), "\n".join(lines) + "\n", 4)
    assert [(s, e) for _, s, e, _ in index.recent_edits(10)] == [(5, 7), (32, 32)]


def test_caps_end_the_scan_with_a_message(tmp_path: Path) -> None:
    for i in range(30):
        write(tmp_path, f"m{i:02}.py", f"def f{i}(): ...\n")
    write(tmp_path, "big.py", "x = 1\n" * 50_000)
    (tmp_path / "blob.py").write_bytes(b"def binary():\x00\x01\x02\n")
    registry = WorkspaceRegistry(IndexLimits(max_files=10, max_file_bytes=100_000))
    try:
        registry.set_folders("c", os.getpid(), [str(tmp_path)])
        index = registry.index_at(tmp_path)
        assert index is not None
        wait_for(lambda: index.status.state != "scanning")
        status = index.status
        # The first 10 source files found (big.py, over the size cap, is not one): blob.py (binary,
        # so not indexed) and m00..m08.
        assert status.state == "capped" and status.files == 9 and "indexed the first 10 found" in status.message
        write(tmp_path, "late.py", "def late(): ...\n")  # room for one more
        wait_for(lambda: index.definitions("late"))
        write(tmp_path, "later.py", "def later(): ...\n")  # over the cap: left out, no error
        write(tmp_path, "m00.py", "def f0_changed(): ...\n")  # indexed files still follow changes
        wait_for(lambda: index.definitions("f0_changed"))
        assert index.status.files == 10 and not index.definitions("later")
    finally:
        registry.close()
    registry = WorkspaceRegistry(IndexLimits(max_file_bytes=100_000))
    try:
        registry.set_folders("c", os.getpid(), [str(tmp_path)])
        index = registry.index_at(tmp_path)
        assert index is not None
        wait_for(lambda: index.status.state != "scanning")
        assert index.status.files == 32 and not index.definitions("binary")  # m00..m29, late, later
        assert index.status.skipped.get("too large") == 1 and index.status.skipped.get("binary") == 1
        assert index.text("big.py") is None
    finally:
        registry.close()


def test_symlinks_do_not_lead_out_of_the_workspace(tmp_path: Path, open_index: Opener) -> None:
    outside = tmp_path / "outside"
    write(outside, "leak.py", "def leaked(): ...\n")
    root = tmp_path / "root"
    write(root, "inside.py", "def inside(): ...\n")
    (root / "link_to_file.py").symlink_to(outside / "leak.py")
    (root / "link_to_folder").symlink_to(outside, target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)
    (root / "alias.py").symlink_to(root / "inside.py")
    index = open_index(root)
    assert not index.definitions("leaked") and index.text("link_to_file.py") is None
    assert _paths(index, "inside") == ["alias.py", "inside.py"]


def test_scans_wait_for_interactive_work_but_changes_do_not(tmp_path: Path) -> None:
    for i in range(200):
        write(tmp_path, f"pkg/m{i:03}.py", f"def f{i}(): ...\n")
    busy = [True]
    registry = WorkspaceRegistry(IndexLimits(), should_yield=lambda: busy[0])
    try:
        registry.set_folders("c", os.getpid(), [str(tmp_path)])
        index = registry.index_at(tmp_path)
        assert index is not None
        wait_for(lambda: registry.worker.yielded_s > 0.3)
        assert index.status.state == "scanning" and index.status.files == 0
        path = write(tmp_path, "pkg/m000.py", "def saved_while_busy(): ...\n")
        registry.set_buffer("c", str(path), "def typed_while_busy(): ...\n", 1)
        assert wait_for(lambda: index.definitions("typed_while_busy")) < WITHIN_S
        busy[0] = False
        wait_for(lambda: index.status.state == "ready")
        assert index.status.files == 200
    finally:
        registry.close()


def test_clients_share_indexes_release_them_and_closed_after_grace(tmp_path: Path, registry: WorkspaceRegistry) -> None:
    write(tmp_path, "a/x.py", "def x(): ...\n")
    write(tmp_path, "a/nested/y.py", "def y(): ...\n")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    registry.set_folders("one", os.getpid(), [str(tmp_path / "a")])
    registry.set_folders("two", gone.pid, [str(tmp_path / "a"), str(tmp_path / "a" / "nested"), "/tmp", str(Path.home())])
    shared = registry.index_at(tmp_path / "a")
    nested = registry.index_at(tmp_path / "a" / "nested")
    assert shared is not None and nested is not None and len(registry.folder_status()) == 4
    assert registry.for_path(tmp_path / "a" / "nested" / "y.py") is nested  # the deepest folder
    assert registry.for_path(tmp_path / "a" / "x.py") is shared
    skipped = [f for f in registry.folder_status("two") if f.state == "skipped"]
    assert len(skipped) == 2 and all("not indexed" in f.message for f in skipped)

    registry.sweep()  # "two"'s process is gone: released; "nested" has no client left
    assert not registry.known("two") and registry.known("one")
    wait_for(lambda: (registry.sweep(), registry.index_at(tmp_path / "a" / "nested"))[1] is None, 5)
    assert nested.status.state == "closed" and registry.index_at(tmp_path / "a") is shared

    registry.release("one")
    registry.set_folders("three", os.getpid(), [str(tmp_path / "a")])  # back within the grace period
    registry.sweep()
    assert registry.index_at(tmp_path / "a") is shared
    registry.release("three")
    wait_for(lambda: (registry.sweep(), registry.index_at(tmp_path / "a"))[1] is None, 5)
    assert registry.folder_status() == []


def test_a_whole_tree_copied_in_is_indexed(tmp_path: Path, open_index: Opener) -> None:
    """What a git checkout or an unpacked archive does: many folders and files at once."""
    source = tmp_path / "source"
    for folder in range(30):
        for module in range(3):
            write(source, f"pkg{folder}/sub/m{module}.py", f"def f_{folder}_{module}(): ...\n")
    root = tmp_path / "root"
    write(root, "main.py", "def main(): ...\n")
    index = open_index(root)
    shutil.copytree(source, root / "vendor_free")
    shutil.copytree(source, root / "nested" / "deeper")
    seconds = wait_for(lambda: index.status.files == 1 + 2 * 90)
    assert seconds < 3 * WITHIN_S, f"took {seconds:.2f} s"
    assert _paths(index, "f_29_2") == ["nested/deeper/pkg29/sub/m2.py", "vendor_free/pkg29/sub/m2.py"]
