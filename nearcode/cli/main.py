"""The `nearcode` command: daemon, lsp, complete, status, stop, model, engine, doctor, stats, dashboard."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from nearcode import __version__
from nearcode.cli.engine_args import add_engine_arguments, engine_options_from
from nearcode.cli.engine_install import add_engine_parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nearcode", description="Local code completion.")
    parser.add_argument("--version", action="version", version=f"nearcode {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("daemon", help="run the daemon in the foreground (one per user)")
    p.add_argument("--model", default="", help="model preset (quality, fast) or a GGUF file path; "
                   "default: $NEARCODE_MODEL, else quality (the 1.5B)")
    p.add_argument("--family", default=None, help="prompt family override, FAMILY or FAMILY:MODE (prompts/families)")
    p.add_argument("--parallel", type=int, default=4, help="parallel generation slots")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    p.add_argument("--transport", default="auto", choices=["auto", "unix", "tcp"])
    p.add_argument("--no-background-pause", dest="background_pause", action="store_false",
                   help="let docstrings and tests run beside keystrokes instead of pausing for them")
    p.add_argument("--idle-unload-minutes", type=_minutes, default=30.0, metavar="N",
                   help="release the model's memory after N minutes without requests, load it again on the "
                        "next one (default 30; 0: never)")
    add_engine_arguments(p)

    add_doctor_arguments(sub.add_parser("doctor", help="show GPU, engines, model, template and the engine `auto` picks"))

    p = sub.add_parser("lsp", help="run the language server (editors start this)")
    p.add_argument("--stdio", action="store_true", help="speak LSP on stdin/stdout (the default)")

    p = sub.add_parser("complete", help="print a completion for FILE:LINE:COL (1-based)")
    p.add_argument("location")

    p = sub.add_parser("stats", help="your acceptance, survival and latency figures (local insight)")
    add_stats_arguments(p)
    p = sub.add_parser("dashboard", help="the same figures as plots in a local web page")
    add_dashboard_arguments(p)

    sub.add_parser("status", help="show the running daemon")
    sub.add_parser("stop", help="stop the running daemon")

    sub.add_parser("models", help="list presets and installed models (= model list)")
    p = sub.add_parser("model", help="manage the embedded models")
    p.add_argument("action", choices=["install", "path", "list"])
    p.add_argument("--preset", default="default", help="quality (the default), fast, or default")
    p.add_argument("--model", default="", help="a GGUF path instead of a preset (for `path`)")
    add_engine_parser(sub)

    args = parser.parse_args(argv)
    if args.command == "daemon":
        from nearcode.daemon.server import DaemonConfig, run_daemon

        config = DaemonConfig(
            model=args.model, engine=args.engine, family=args.family,
            parallel_slots=args.parallel, threads=args.threads, transport=args.transport,
            engine_options=engine_options_from(args), background_pause=args.background_pause,
            idle_unload_minutes=args.idle_unload_minutes,
        )
        return run_daemon(config)
    if args.command == "lsp":
        from nearcode.lsp.server import run_stdio

        run_stdio()
        return 0
    if args.command == "doctor":
        from nearcode.cli.doctor import run_doctor

        return run_doctor(args)
    if args.command == "stats":
        from nearcode.cli.stats import run_stats

        return run_stats(args)
    if args.command == "dashboard":
        from nearcode.cli.dashboard import run_dashboard

        return run_dashboard(args)
    if args.command == "models":
        return _model(argparse.Namespace(action="list", preset="default", model=""))
    if args.command == "model":
        return _model(args)
    if args.command == "engine":
        from nearcode.cli.engine_install import run_engine_install

        return run_engine_install(args)
    return asyncio.run(_client_command(args))


def add_doctor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="", help="model preset or GGUF file path to check")
    parser.add_argument("--family", default=None, help="prompt family override, as for `daemon`")
    add_engine_arguments(parser)


def add_stats_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=int, default=30, help="period to summarize (default 30 days)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    switch = parser.add_mutually_exclusive_group()
    switch.add_argument("--off", action="store_true", help="stop recording (all editors)")
    switch.add_argument("--on", action="store_true", help="record again after --off")
    switch.add_argument("--erase", action="store_true", help="delete everything recorded so far")


def add_dashboard_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=0, help="loopback port (default: a free one)")
    parser.add_argument("--days", type=int, default=30, help="period shown (default 30 days)")
    parser.add_argument("--no-browser", action="store_true", help="print the link only, do not open a browser")


def _minutes(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (never) or more")
    return value


def _model(args: argparse.Namespace) -> int:
    from nearcode.daemon.model_store import (
        DEFAULT_PRESET,
        PRESETS,
        ModelError,
        default_model_spec,
        installed_models,
        preset_named,
        resolve_model,
    )

    try:
        if args.action == "list":
            from nearcode.daemon.model_install import preset_state

            for name, preset in PRESETS.items():
                print(f"{name:10} {preset.file_name:48} {preset.description} [{preset_state(preset)}]")
            print(f"a daemon without --model runs: {default_model_spec()}")
            print("installed:")
            for path in installed_models():
                print(f"  {path} ({path.stat().st_size / 1e6:.0f} MB)")
            from nearcode.daemon.vllm_setup.conversion import installed_conversions

            conversions = installed_conversions()
            print("converted for vLLM (nearcode engine install vllm):" + ("" if conversions else " none"))
            for converted in conversions:
                print(f"  {converted.describe()}")
            return 0
        if args.action == "path":
            print(resolve_model(args.model or args.preset))
            return 0
        from nearcode.daemon.model_install import install_preset

        chosen = preset_named(args.preset)
        if chosen is None:
            raise ModelError(f"no preset {args.preset!r}; presets: {', '.join(PRESETS)} (default: {DEFAULT_PRESET})")
        print(install_preset(chosen))
        return 0
    except (ModelError, KeyError) as exc:
        print(f"nearcode: {exc}", file=sys.stderr)
        return 1


async def _client_command(args: argparse.Namespace) -> int:
    from nearcode.lsp.daemon_client import DaemonClient, DaemonUnavailable

    client = DaemonClient(spawn=args.command == "complete")
    try:
        if args.command == "status":
            _print_status(await client.get_json("/api/status"))
        elif args.command == "stop":
            stopped = await client.shutdown()
            print("nearcode: daemon stopped" if stopped else "nearcode: no daemon was running")
        elif args.command == "complete":
            return await _complete(client, args.location)
        return 0
    except DaemonUnavailable as exc:
        print(f"nearcode: {exc}", file=sys.stderr)
        return 1
    finally:
        await client.close()


def _print_status(status: dict[str, Any]) -> None:
    def ms(value: Any) -> str:
        return "-" if value is None else f"{value:.0f} ms"

    print(f"address:  {status['address']} ({status['transport']}, pid {status['pid']})")
    state = status.get("state", "ready")
    print(f"state:    {state}" + (f" - {status['state_message']}" if status.get("state_message") else ""))
    print(f"engine:   {status['engine']} ({status['parallel_slots']} slots)")
    print(f"model:    {status['model']} [{status['family']}] {status['model_path']}")
    print(f"uptime:   {status['uptime_s']:.0f} s")
    print(f"requests: {status['requests']} served {json.dumps(status['finish_reasons'])}")
    print(f"latency:  p50 {ms(status['latency_p50_ms'])}, p95 {ms(status['latency_p95_ms'])}")
    print(
        f"cancels:  {status['cancelled_in_engine']} in the engine, "
        f"{status['tokens_after_cancel_total']} tokens after cancel (max {status['tokens_after_cancel_max']})"
    )
    print(f"reading:  {_reading_line(status)}")
    if speculation := status.get("speculation"):
        print(f"speculation: {_speculation_line(speculation)}")
    rss = status.get("memory_rss_bytes")
    idle = status.get("idle_unload_s") or 0
    policy = f"released after {idle / 60:g} min idle" if idle else "never released"
    print(f"memory:   {'-' if rss is None else f'{rss / 2**20:.0f} MiB'} resident; model "
          f"{status.get('model_state', 'loaded')} ({policy}; {status.get('model_unloads', 0)} releases, "
          f"{status.get('model_reloads', 0)} reloads)")
    runtime = status.get("engine_runtime") or {}
    if unused := runtime.get("unused_cpu_features"):
        print(f"engine build: leaves {', '.join(unused)} of this CPU unused (nearcode engine install native)")
    if runtime.get("prefix_cache_queries") is not None:
        rate = runtime.get("prefix_cache_hit_rate")
        print(f"prefix cache: {'-' if rate is None else f'{rate:.1%}'} hit rate ({runtime['prefix_cache_hits']} of "
              f"{runtime['prefix_cache_queries']} prompt tokens found in vLLM's cache), "
              f"{runtime.get('requests_running')} running, {runtime.get('requests_waiting')} waiting")
    for folder in status.get("workspace", {}).get("folders", []):
        print(f"index:    {_folder_line(folder)}")


def _reading_line(status: dict[str, Any]) -> str:
    """How fast the engine reads prompts, and so how much of a file a cold completion sees."""
    speed, tokens = status.get("prompt_tokens_per_s"), status.get("cold_prompt_tokens")
    if speed is None:
        return f"speed not measured yet; prompts get up to {tokens} tokens"
    return f"{speed:g} prompt tokens/s measured; a cold prompt gets {tokens} tokens"


def _speculation_line(speculation: dict[str, Any]) -> str:
    """`ngram, 412 of 530 drafted tokens accepted (77.7%)`, or the kind alone before any draft."""
    kind, drafted = speculation.get("type", "none"), speculation.get("drafted") or 0
    if kind == "none" or not drafted:
        return f"{kind}" + ("" if kind == "none" else ", nothing drafted yet")
    rate = speculation.get("acceptance_rate")
    return (f"{kind}, {speculation.get('accepted', 0):,} of {drafted:,} drafted tokens accepted"
            + ("" if rate is None else f" ({rate:.1%})"))


def _folder_line(folder: dict[str, Any]) -> str:
    """One workspace folder's index: `~/src/app: ready, 1,234 files, 9,876 definitions (2 editors)`."""
    state = folder["state"]
    if state == "scanning":
        state = f"scanning {folder['parsed']:,}/{folder['discovered']:,}"
    line = f"{folder['root']}: {state}, {folder['files']:,} files, {folder['definitions']:,} definitions"
    if folder.get("clients"):
        line += f" ({folder['clients']} editor{'s' if folder['clients'] != 1 else ''})"
    return line + (f" - {folder['message']}" if folder.get("message") else "")


async def _complete(client: Any, location: str) -> int:
    from nearcode.lsp.completion import complete, cursor_text
    from nearcode.shared.languages import language_for_path
    from nearcode.shared.protocol.settings import Settings

    try:
        file_part, line_s, col_s = location.rsplit(":", 2)
        line, col = int(line_s), int(col_s)
    except ValueError:
        print("nearcode: expected FILE:LINE:COL, e.g. app.py:12:8 (1-based)", file=sys.stderr)
        return 2
    path = Path(file_part)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"nearcode: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    lines = source.split("\n")
    if not (1 <= line <= len(lines)) or not (1 <= col <= len(lines[line - 1]) + 1):
        print(f"nearcode: {line}:{col} is outside {path} ({len(lines)} lines)", file=sys.stderr)
        return 2
    offset = sum(len(text) + 1 for text in lines[: line - 1]) + col - 1
    cursor = cursor_text(source, offset, path.resolve().as_uri(), str(path), language_for_path(str(path)))
    outcome = await complete(client, cursor, Settings(), invoked=True, client_id="cli")
    if not outcome.offered:
        print(f"nearcode: no completion ({outcome.reason})", file=sys.stderr)
        return 1
    print(outcome.text)
    return 0
