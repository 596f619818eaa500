"""The insight database: one SQLite file in the user's cache, shared by every editor's server.

One row per suggestion a user saw: when, language, engine and model, latency, its length, and
what became of it (accepted whole / by word / by line, typed over, dismissed) and how much of the
accepted text was still there 30 s, 2 min and 5 min later. Never document text: lengths, counts
and ratios only, so the file says how well completion works for the user, not what they wrote.

Several language servers write at once: WAL mode (readers never block the writer), a busy timeout,
and short transactions. The file stays small: rows older than MAX_AGE_DAYS and beyond MAX_ROWS
(oldest first) are deleted as new ones come in. `nearcode stats --off` leaves a marker file that
every server checks before it records anything; `--erase` empties the table.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from nearcode.shared import paths

MAX_ROWS = 50_000  # ~100 bytes a row: a few MB at most
MAX_AGE_DAYS = 180
DB_NAME = "insight.sqlite3"
OFF_MARKER = "off"
BUSY_TIMEOUT_MS = 2_000
# SQLite's page cache per connection (KiB). Its default, 2 MiB, fills as the file grows toward
# MAX_ROWS (random row ids touch pages all over the key index) and stays resident: in the hour-long
# soak each language server's memory crept up by 2.5-3 MB. Writes are short appends and the
# summaries read the table once, so a small cache costs nothing measurable.
PAGE_CACHE_KIB = 256
SCHEMA_VERSION = 1

# Survival checkpoints (seconds after acceptance) and their columns. Cody's persistence tracker
# measures at the same points; tests shorten them with NEARCODE_INSIGHT_CHECKPOINTS_S.
SURVIVAL_COLUMNS = ("survival_30s", "survival_120s", "survival_300s")
OUTCOMES = ("pending", "accepted", "partial", "typed_over", "dismissed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS suggestions (
    id TEXT PRIMARY KEY,             -- the completion id: random, says nothing about the code
    shown_at REAL NOT NULL,          -- unix time
    language TEXT NOT NULL,
    engine TEXT NOT NULL,
    model TEXT NOT NULL,
    source TEXT NOT NULL,            -- model, cache (typed through / next line), joined (in flight)
    invoked INTEGER NOT NULL,        -- asked for explicitly (1) or while typing (0)
    latency_ms REAL,
    chars INTEGER NOT NULL,          -- length of the suggestion shown
    lines INTEGER NOT NULL,
    choices INTEGER NOT NULL,        -- distinct suggestions offered to cycle through
    outcome TEXT NOT NULL,           -- pending, accepted, partial, typed_over, dismissed
    accepted_whole INTEGER NOT NULL DEFAULT 0,
    accepted_words INTEGER NOT NULL DEFAULT 0,  -- accept-next-word steps
    accepted_lines INTEGER NOT NULL DEFAULT 0,  -- accept-next-line steps
    accepted_choice INTEGER,         -- which of the choices was accepted (0: the first)
    accepted_chars INTEGER NOT NULL DEFAULT 0,
    typed_chars INTEGER NOT NULL DEFAULT 0,     -- suggested characters the user typed instead
    resolved_at REAL,
    survival_30s REAL,               -- 1 - normalized edit distance of the accepted text then;
    survival_120s REAL,              -- 0 when it was deleted; NULL when unknown (file closed)
    survival_300s REAL
);
CREATE INDEX IF NOT EXISTS suggestions_by_time ON suggestions (shown_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass
class SuggestionRow:
    """What is stored about one suggestion (column names as in the table)."""

    id: str
    shown_at: float
    language: str
    engine: str
    model: str
    source: str
    invoked: bool
    latency_ms: float | None
    chars: int
    lines: int
    choices: int = 1
    outcome: str = "pending"
    accepted_whole: bool = False
    accepted_words: int = 0
    accepted_lines: int = 0
    accepted_choice: int | None = None
    accepted_chars: int = 0
    typed_chars: int = 0
    resolved_at: float | None = None


def database_path() -> Path:
    return paths.insight_dir() / DB_NAME


def off_marker() -> Path:
    return paths.insight_dir() / OFF_MARKER


def turned_off() -> bool:
    """`nearcode stats --off` was run (and not undone with --on)."""
    return off_marker().exists()


def set_turned_off(off: bool) -> None:
    marker = off_marker()
    if off:
        marker.write_text("insight recording turned off by `nearcode stats --off`\n")
    else:
        marker.unlink(missing_ok=True)


class InsightStore:
    """One connection to the database; not shared between threads."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or database_path()
        self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        self.path.chmod(0o600)
        self._db.row_factory = sqlite3.Row
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")  # WAL: durable enough for statistics
        self._db.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")  # negative: KiB, not pages
        self._db.executescript(_SCHEMA)  # idempotent: every server runs it when it opens the file
        with self._transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def insert(self, row: SuggestionRow) -> None:
        values = asdict(row)
        columns = ", ".join(values)
        marks = ", ".join(f":{name}" for name in values)
        with self._transaction():
            self._db.execute(f"INSERT OR REPLACE INTO suggestions ({columns}) VALUES ({marks})", values)

    def update(self, row_id: str, fields: Mapping[str, object]) -> None:
        """Set some columns of one row (names from SuggestionRow or SURVIVAL_COLUMNS only)."""
        allowed = set(SuggestionRow.__dataclass_fields__) | set(SURVIVAL_COLUMNS)
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"not insight columns: {sorted(unknown)}")
        if not fields:
            return
        assignments = ", ".join(f"{name} = :{name}" for name in fields)
        with self._transaction():
            self._db.execute(f"UPDATE suggestions SET {assignments} WHERE id = :row_id", {**fields, "row_id": row_id})

    def prune(self, max_rows: int = MAX_ROWS, max_age_days: float = MAX_AGE_DAYS) -> int:
        """Delete rows past the age and row caps; returns how many went."""
        cutoff = time.time() - max_age_days * 86_400
        with self._transaction():
            aged = self._db.execute("DELETE FROM suggestions WHERE shown_at < ?", (cutoff,)).rowcount
            extra = self._db.execute(
                "DELETE FROM suggestions WHERE id IN (SELECT id FROM suggestions ORDER BY shown_at DESC "
                "LIMIT -1 OFFSET ?)",
                (max_rows,),
            ).rowcount
        return int(aged) + int(extra)

    def erase(self) -> int:
        """Delete every row and give the space back; other servers may keep the file open."""
        with self._transaction():
            count = self._db.execute("DELETE FROM suggestions").rowcount
        self._db.execute("VACUUM")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(count)

    def rows(self, since: float = 0.0) -> list[sqlite3.Row]:
        return list(self._db.execute("SELECT * FROM suggestions WHERE shown_at >= ? ORDER BY shown_at", (since,)))

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM suggestions").fetchone()[0])
