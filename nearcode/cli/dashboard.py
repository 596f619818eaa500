"""`nearcode dashboard`: the insight figures as a local web page, for this user only.

Bound to 127.0.0.1 on a free port. The link it prints carries a random token that works once:
the first request with it gets a session cookie (HttpOnly, SameSite=Strict) and is redirected to
the bare address, so the token is spent and never sits in the browser's history or a Referer.
Every other request without that cookie is refused (403), as is one whose Host header is not
this loopback address (a web page elsewhere cannot reach it through DNS rebinding). The page is
one HTML document with inline CSS and SVG; its Content-Security-Policy forbids loading anything,
so it works offline and tells nobody it was opened.
"""

from __future__ import annotations

import argparse
import hmac
import json
import secrets
import threading
import webbrowser
from html import escape
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from nearcode.cli import charts
from nearcode.cli.stats import load_summary
from nearcode.lsp.insight.store import database_path, turned_off

COOKIE = "nearcode_dashboard"
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


class DashboardServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, days: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.days = days
        self.token: str | None = secrets.token_urlsafe(24)  # spent on first use
        self.session = secrets.token_urlsafe(32)
        self.lock = threading.Lock()
        self.refused = 0

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def link(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    def spend(self, given: str) -> bool:
        with self.lock:
            if self.token is None or not hmac.compare_digest(given, self.token):
                return False
            self.token = None
            return True


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    server_version = "nearcode-dashboard"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # request lines would carry the one-time token

    def do_GET(self) -> None:
        if self.headers.get("Host") not in (f"127.0.0.1:{self.server.port}", f"localhost:{self.server.port}"):
            self._refuse("wrong Host header")
            return
        url = urlsplit(self.path)
        token = parse_qs(url.query).get("token", [""])[0]
        if self._has_session():
            if token:  # the link opened again in the browser that used it: drop the token from the address
                self._redirect_home(set_cookie=False)
                return
        elif token and self.server.spend(token):
            self._redirect_home(set_cookie=True)
            return
        else:
            self._refuse(
                "this link was already used (it works once) or is wrong: run `nearcode dashboard` again"
                if token else "open the link `nearcode dashboard` printed"
            )
            return
        if url.path == "/":
            self._send(200, "text/html; charset=utf-8", render_page(self.server.days).encode())
        elif url.path == "/summary.json":
            self._send(200, "application/json", json.dumps(load_summary(self.server.days).wire()).encode())
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def _redirect_home(self, set_cookie: bool) -> None:
        self.send_response(303)
        self.send_header("Location", "/")
        if set_cookie:
            self.send_header("Set-Cookie", f"{COOKIE}={self.server.session}; HttpOnly; SameSite=Strict; Path=/")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _has_session(self) -> bool:
        cookie = SimpleCookie(self.headers.get("Cookie", ""))
        given = cookie[COOKIE].value if COOKIE in cookie else ""
        return bool(given) and hmac.compare_digest(given, self.server.session)

    def _refuse(self, why: str) -> None:
        self.server.refused += 1
        self._send(403, "text/plain; charset=utf-8", f"nearcode dashboard: refused: {why}\n".encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.0%}"


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def render_page(days: int) -> str:
    summary = load_summary(days).wire()
    total = summary["total"]
    kept = total["survival"]
    cards = [
        ("shown", str(total["shown"])), ("accepted", f"{total['accepted']} ({_pct(total['rate'])})"),
        ("characters accepted", str(total["accepted_chars"])),
        *((f"kept after {label}", _pct(share)) for label, share in zip(summary["checkpoints"], kept, strict=True)),
        ("latency p50 / p95", f"{_ms(total['latency_p50_ms'])} / {_ms(total['latency_p95_ms'])}"),
    ]
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td>{t['shown']}</td><td>{t['accepted']}</td><td>{_pct(t['rate'])}</td>"
        f"<td>{t['whole']}</td><td>{t['by_word']}</td><td>{t['by_line']}</td><td>{t['typed_over']}</td>"
        f"<td>{t['accepted_chars']}</td>{''.join(f'<td>{_pct(s)}</td>' for s in t['survival'])}"
        f"<td>{_ms(t['latency_p50_ms'])}</td></tr>"
        for name, t in summary["by_language"].items()
    )
    plots = [
        charts.timeline(summary["by_day"], days=min(days, 60)),
        charts.languages(summary["by_language"]),
        charts.latency(summary["latency_bins_ms"], summary["latency_histogram"]),
        charts.survival(summary["checkpoints"], kept),
    ]
    state = "off" if turned_off() else "on"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nearcode insight</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1c2430; background: #fafbfc; }}
h1 {{ font-size: 20px; margin: 0 0 4px; }} .muted {{ color: #667085; }}
.cards {{ display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }}
.card {{ background: #fff; border: 1px solid #e3e8ef; border-radius: 8px; padding: 10px 14px; min-width: 120px; }}
.card b {{ display: block; font-size: 18px; }}
.plots {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(640px, 1fr)); gap: 16px; }}
figure {{ margin: 0; background: #fff; border: 1px solid #e3e8ef; border-radius: 8px; padding: 12px; }}
figcaption {{ font-weight: 600; margin-bottom: 6px; }}
svg .grid {{ stroke: #e3e8ef; }} svg .tick, svg .legend {{ font-size: 11px; fill: #667085; }}
svg .small {{ font-size: 9px; }} svg .empty {{ font-size: 14px; fill: #98a2b3; }}
table {{ border-collapse: collapse; margin-top: 16px; background: #fff; }}
th, td {{ border: 1px solid #e3e8ef; padding: 4px 8px; text-align: right; }} td:first-child, th:first-child {{ text-align: left; }}
</style></head><body>
<h1>nearcode insight</h1>
<div class="muted">Your own completions over the last {days} days, from {escape(str(database_path()))}
(recording {state}). Only counts, lengths and timings are kept; no code. Nothing is sent anywhere.</div>
<div class="cards">{"".join(f'<div class="card" data-card="{escape(k)}">{escape(k)}<b>{escape(v)}</b></div>' for k, v in cards)}</div>
<div class="plots">
<figure><figcaption>Suggestions and acceptances per day</figcaption>{plots[0]}</figure>
<figure><figcaption>Acceptance by language</figcaption>{plots[1]}</figure>
<figure><figcaption>Latency</figcaption>{plots[2]}</figure>
<figure><figcaption>Survival of accepted text (still at least {summary['kept_at']:.0%} the same)</figcaption>{plots[3]}</figure>
</div>
<table><thead><tr><th>language</th><th>shown</th><th>accepted</th><th>rate</th><th>whole</th><th>word</th>
<th>line</th><th>typed over</th><th>chars</th>{''.join(f'<th>kept {c}</th>' for c in summary['checkpoints'])}<th>p50</th></tr></thead>
<tbody>{rows}</tbody></table>
</body></html>
"""


def run_dashboard(args: argparse.Namespace) -> int:
    server = DashboardServer(args.port, args.days)
    link = server.link()
    print(f"nearcode dashboard: {link}", flush=True)
    print("(the link works once, in one browser; Ctrl-C stops the dashboard)", flush=True)
    if not args.no_browser:
        webbrowser.open(link)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
