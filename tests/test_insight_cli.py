"""`nearcode stats` and `nearcode dashboard` on a seeded insight file (fast tier). The page in a
real browser: tests/browser/dashboard.e2e.mjs (`make test-dashboard`)."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nearcode.cli.dashboard import DashboardServer
from tests.insight_seed import expected, seed
from tests.support import NEARCODE


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NEARCODE_INSIGHT_DIR", str(tmp_path))
    seed(tmp_path)
    return tmp_path


def stats(*args: str, env_dir: Path) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([*NEARCODE, "stats", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "NEARCODE_INSIGHT_DIR": str(env_dir)})


def test_stats_prints_the_tables_and_json(seeded: Path) -> None:
    want = expected()
    table = stats(env_dir=seeded)
    assert table.returncode == 0, table.stderr
    all_row = next(line for line in table.stdout.splitlines() if line.startswith("all "))
    shown, accepted, rate = all_row.split()[1:4]
    assert (int(shown), int(accepted)) == (want["shown"], want["accepted"])
    assert rate == f"{want['accepted'] / want['shown']:.0%}"
    assert {"python", "typescript", "go"} <= {line.split()[0] for line in table.stdout.splitlines() if line}
    assert len(re.findall(r"^\d{4}-\d\d-\d\d ", table.stdout, re.M)) == want["days"]
    summary = json.loads(stats("--json", env_dir=seeded).stdout)
    assert summary["total"]["shown"] == want["shown"]
    assert summary["total"]["survival"] == pytest.approx(want["survival"])
    assert summary["total"]["survival"][0] > summary["total"]["survival"][2]  # a falling curve
    assert summary["total"]["latency_p50_ms"] is not None


def test_stats_off_on_and_erase(seeded: Path) -> None:
    assert stats("--off", env_dir=seeded).returncode == 0 and (seeded / "off").exists()
    assert "recording off" in stats(env_dir=seeded).stdout
    assert stats("--on", env_dir=seeded).returncode == 0 and not (seeded / "off").exists()
    erased = stats("--erase", env_dir=seeded)
    assert f"erased {expected()['shown']}" in erased.stdout
    assert "nothing recorded yet" in stats(env_dir=seeded).stdout


@pytest.fixture
def dashboard(seeded: Path) -> Iterator[DashboardServer]:
    server = DashboardServer(0, 30)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_the_dashboard_link_works_once_and_nothing_else_gets_in(dashboard: DashboardServer) -> None:
    base = f"http://127.0.0.1:{dashboard.port}"
    link = dashboard.link()
    with httpx.Client() as stranger:
        assert stranger.get(base + "/").status_code == 403
        assert stranger.get(base + "/summary.json").status_code == 403
        assert stranger.get(base + "/?token=guess").status_code == 403
        # A page elsewhere resolving its own name to 127.0.0.1 (DNS rebinding) sends its own Host.
        assert stranger.get(link, headers={"Host": f"evil.example:{dashboard.port}"}).status_code == 403
    with httpx.Client(follow_redirects=True) as browser:
        page = browser.get(link)
        assert page.status_code == 200 and str(page.url) == base + "/"
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert sorted(re.findall(r'data-plot="(\w+)"', page.text)) == ["languages", "latency", "survival", "timeline"]
        assert not re.search(r'(src|href)="(https?:)?//', page.text), "the page loads nothing from anywhere"
        assert browser.get(base + "/summary.json").json()["total"]["shown"] == expected()["shown"]
        assert browser.get(link).status_code == 200  # the same browser may open the link again
    with httpx.Client() as second:
        assert second.get(link).status_code == 403  # the token is spent
