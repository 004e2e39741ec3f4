"""Every benchmark and resilience scenario, one table (issue 7).

    python -m bench [--quick] [--skip NAME ...]

Runs ``bench.intake``, ``bench.teams``, ``bench.notify``, ``bench.councillor``,
``bench.digest``, ``bench.open311``, ``bench.web``, ``bench.export``, ``bench.fuzz``,
``bench.fuzz_cards``
(each if present) and
``bench.resilience`` one after another, each as its own process (``--quick`` passed on),
each writing its JSON into a fresh ``bench/results/run/`` directory and its output to
``bench/results/run/<name>.log``.
Meanwhile a thread samples the peak resident set (``VmHWM``) of every Responder server
process started under this one (``bench.server responder`` and ``app.py``). Then it prints
one table (figure, goal, baseline measured in the same run, value, PASS/FAIL) and writes
``bench/results/latest.json``. A figure a benchmark did not produce is null and FAILs.
Exit status: 0 every goal met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import RESULTS, ROOT, machine, print_rows

RUN_DIR = RESULTS / "run"
BENCHES = (
    "intake",
    "teams",
    "notify",
    "lanes",
    "councillor",
    "digest",
    "open311",
    "web",
    "export",
    "fuzz",
    "fuzz_cards",
    "resilience",
)
# Others: 600 s. fuzz_cards runs twice (SQLite, then PostgreSQL).
# open311 builds its million-task file on first use.
TIMEOUT_S = {
    "councillor": 900,
    "digest": 600,
    "open311": 900,
    "web": 900,
    "export": 1200,
    "fuzz_cards": 1500,
    "resilience": 900,
}

KEYS = (
    "intake_tasks_per_s",
    "intake_baseline_ratio",
    "card_latency_p50_ms",
    "card_latency_p99_ms",
    "teams_cards_per_s",
    "teams_limit_breaches",
    "notify_msgs_per_s",
    "notify_429s",
    "loop_lag_max_ms",
    "lanes_card_p99_ms",
    "bot_turn_cpu_ratio",
    "turn_cpu_ratio_agents",
    "turn_cpu_ratio_botbuilder",
    "digest_100k_ms",
    "open311_post_ratio",
    "open311_updates_p99_ms",
    "web_list_p95_ms",
    "web_map_p95_ms",
    "web_task_p95_ms",
    "csv_rows_per_s",
    "csv_peak_rss_mb",
    "odata_page_p95_ms",
    "peak_rss_mb",
    "crash_lost",
    "crash_duplicates",
    "faults_delivered_pct",
    "fuzz_5xx",
    "card_fuzz_5xx",
    "card_fuzz_unauthorised_changes",
    "card_fuzz_log_leaks",
    "two_instance_doubles",
)


# --- peak RSS of Responder's server processes --------------------------------------------


def _descends_from(pid: int, ancestor: int) -> bool:
    for _ in range(20):
        if pid == ancestor:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        if pid <= 1:
            return False
    return False


class RssSampler(threading.Thread):
    """Every 0.2 s, VmHWM (the kernel's own peak) of each Responder server under us."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kb: dict[int, tuple[int, str]] = {}  # pid -> (VmHWM kB, what)
        self.current = ""
        self._halt = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self._halt.wait(0.2):
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    cmd = (entry / "cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                responder = (b"bench.server" in cmd and b"responder" in cmd) or (
                    len(cmd) > 1 and cmd[1] == b"app.py"
                )
                if not responder or not _descends_from(int(entry.name), me):
                    continue
                try:
                    status = (entry / "status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        kb = int(line.split()[1])
                        pid = int(entry.name)
                        if kb > self.peak_kb.get(pid, (0, ""))[0]:
                            self.peak_kb[pid] = (kb, self.current)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def peak(self) -> tuple[float | None, str]:
        if not self.peak_kb:
            return None, ""
        kb, where = max(self.peak_kb.values())
        return round(kb / 1024, 1), where


# --- running the benchmarks ----------------------------------------------------------------


def run_bench(name: str, quick: bool, sampler: RssSampler) -> dict[str, Any]:
    output = RUN_DIR / f"{name}.json"
    log = RUN_DIR / f"{name}.log"
    command = [sys.executable, "-m", f"bench.{name}", "--output", str(output)]
    if quick:
        command.append("--quick")
    sampler.current = name
    print(f"== {name}: {' '.join(command[1:])} (log: {log.relative_to(ROOT)})", flush=True)
    started = time.monotonic()
    with log.open("w") as out:
        try:
            rc: int | None = subprocess.run(
                command,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=TIMEOUT_S.get(name, 600),
            ).returncode
        except subprocess.TimeoutExpired:
            rc = None
    seconds = time.monotonic() - started
    data: dict[str, Any] | None = None
    if output.exists():
        try:
            data = json.loads(output.read_text())
        except ValueError:
            data = None
    status = {0: "goals met", 1: "a goal missed", 2: "run invalid", None: "timed out"}
    print(f"   exit {rc} ({status.get(rc, 'error')}) in {seconds:.0f} s", flush=True)
    return {"exit": rc, "seconds": round(seconds, 1), "data": data}


def dig(data: Any, *path: str | int) -> Any:
    for key in path:
        if data is None:
            return None
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def breaches(limits: dict[str, Any] | None) -> int | None:
    """Requests past a Teams limit, per conversation and per bot (bench.teams' LimitCheck)."""
    if not limits:
        return None
    return sum(limits["breaches_per_conversation"].values()) + sum(
        limits["breaches_per_bot"].values()
    )


@dataclass
class Row:
    key: str
    goal: str
    check: Callable[[float], bool]
    value: Any
    baseline: str = "-"
    note: str = ""

    @property
    def met(self) -> bool:
        return isinstance(self.value, int | float) and self.check(self.value)


def fmt(value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def turn_ratio_row(teams: dict[str, Any] | None, runtime: str) -> Row:
    """bench.teams' officer 'my tasks' turn on one Teams runtime, against the echo bot of
    the same SDK (issue 15: <= 0.5 on each)."""
    turns = (teams or {}).get("turns") or []
    ours = next(
        (
            t
            for t in turns
            if t.get("bot") == "responder"
            and t.get("runtime") == runtime
            and t.get("who", "").startswith("officer")
        ),
        None,
    )
    echo = next((t for t in turns if t.get("bot") == "echo" and t.get("runtime") == runtime), None)
    ratio = None
    if ours and echo and echo.get("cpu_ms_per_turn"):
        ratio = round(ours["cpu_ms_per_turn"] / echo["cpu_ms_per_turn"], 3)
    return Row(
        f"turn_cpu_ratio_{runtime}",
        "<= 0.5 x echo",
        lambda v: v <= 0.5,
        ratio,
        f"{runtime} echo {echo['cpu_ms_per_turn']} ms CPU/turn" if echo else "-",
        "officer 'my tasks', 10 tasks on the card",
    )


def open311_rows(o: dict[str, Any] | None) -> list[Row]:
    """bench.open311 (issue 17): Open311 POSTs beside the JSON intake in the same server and
    run, and servicerequestupdates for a two-hour window beside a static body of its size."""
    json_ps, o311_ps = dig(o, "json_posts_per_s"), dig(o, "open311_posts_per_s")
    tasks = dig(o, "open311_updates_tasks")
    static = dig(o, "updates", "static", "p99_ms")
    per_window = dig(o, "updates", "updates_per_window", "median")
    size = ""
    if tasks:
        size = f"{tasks:,} tasks" + ("" if tasks == 1_000_000 else " (not the goal's 1M)")
    return [
        Row(
            "open311_post_ratio",
            ">= 0.8 x JSON",
            lambda v: v >= 0.8,
            dig(o, "open311_post_ratio"),
            f"JSON intake {json_ps:.0f}/s" if json_ps else "-",
            f"Open311 {o311_ps:.0f}/s, one server, alternating rounds"
            if o311_ps is not None
            else "bench/open311.py absent or failed",
        ),
        Row(
            "open311_updates_p99_ms",
            "<= 50",
            lambda v: v <= 50,
            dig(o, "open311_updates_p99_ms"),
            f"static body p99 {static} ms" if static is not None else "-",
            f"2-hour window, {size}, median {per_window} updates" if size else "",
        ),
    ]


def web_rows(w: dict[str, Any] | None) -> list[Row]:
    """bench.web (issue 18): a manager's work list and map data over a million tasks, and
    task pages, each beside a bare aiohttp handler answering the same bytes."""
    tasks = dig(w, "tasks")
    size = f"{tasks:,} tasks" if tasks else "bench/web.py absent or failed"

    def base(kind: str) -> str:
        p95 = dig(w, "figures", kind, "baseline", "p95_ms")
        return f"bare handler p95 {p95} ms" if p95 is not None else "-"

    return [
        Row(
            "web_list_p95_ms",
            "<= 150",
            lambda v: v <= 150,
            dig(w, "web_list_p95_ms"),
            base("list"),
            f"/tasks as a manager, 7 views, {size}",
        ),
        Row(
            "web_map_p95_ms",
            "<= 150",
            lambda v: v <= 150,
            dig(w, "web_map_p95_ms"),
            base("map"),
            f"/map/data (up to 5,000 markers), {size}",
        ),
        Row(
            "web_task_p95_ms",
            "<= 50",
            lambda v: v <= 50,
            dig(w, "web_task_p95_ms"),
            base("task"),
            "/tasks/{reference}, tasks drawn at random",
        ),
    ]


def export_rows(e: dict[str, Any] | None) -> list[Row]:
    """bench.export (issue 19): the CSV export of every task beside a bare SELECT ->
    csv.writer, its server's peak RSS, and an OData page of 1,000 rows beside a bare
    aiohttp handler answering the same body."""
    bare = dig(e, "bare_select", "rows_per_s")
    tasks = dig(e, "tasks")
    size = f"{tasks:,} tasks" if tasks else "bench/export.py absent or failed"
    return [
        Row(
            "web_list_p95_ms",
            "web_map_p95_ms",
            "web_task_p95_ms",
            "csv_rows_per_s",
            ">= 50000",
            lambda v: v >= 50_000,
            dig(e, "csv_rows_per_s"),
            f"bare SELECT -> csv {bare:,}/s" if bare else "-",
            f"{size}, ratio {dig(e, 'csv_bare_ratio')}",
        ),
        Row(
            "csv_peak_rss_mb",
            "<= 200",
            lambda v: v <= 200,
            dig(e, "csv_peak_rss_mb"),
            f"before {dig(e, 'csv', 'rss_before_mb')} MB" if e else "-",
            "VmHWM of the server after the export",
        ),
        Row(
            "odata_page_p95_ms",
            "<= 100",
            lambda v: v <= 100,
            dig(e, "odata_page_p95_ms"),
            f"bare handler p95 {dig(e, 'odata', 'bare_handler', 'p95_ms')} ms" if e else "-",
            "1,000 rows, nextLink pages at random places",
        ),
    ]


def figures(
    runs: dict[str, dict[str, Any]], rss: tuple[float | None, str], quick: bool
) -> list[Row]:
    d = {name: run["data"] for name, run in runs.items()}
    intake, teams, notify = d.get("intake"), d.get("teams"), d.get("notify")
    councillor, digest, fuzz, res = (
        d.get("councillor"),
        d.get("digest"),
        d.get("fuzz"),
        d.get("resilience"),
    )
    cards = d.get("fuzz_cards")
    cards_note = (
        f"{dig(cards, 'card_fuzz_invokes')} invokes, "
        + " + ".join(dig(cards, "settings", "databases") or [])
        if cards
        else "bench/fuzz_cards.py absent or failed"
    )
    baseline_ps = dig(intake, "baseline", "per_second")
    echo_ms = dig(councillor, "echo_turn_cpu_ms")
    idle_lag = dig(notify, "result", "idle_lag", "max_lag_ms")
    if digest is not None and digest.get("open_tasks") == 100_000:
        digest_ms, digest_note = digest.get("digest_ms_median"), "median, 100k open"
    else:
        digest_ms = dig(digest, "scaled_100k_ms")
        digest_note = (
            f"scaled linearly from {dig(digest, 'open_tasks')} open tasks "
            f"({dig(digest, 'digest_ms_median')} ms median)"
            if digest_ms is not None
            else ""
        )
    crashes = dig(res, "crash", "crashes") or 1
    tasks = dig(councillor, "tasks")
    return [
        Row(
            "intake_tasks_per_s",
            ">= 500",
            lambda v: v >= 500,
            dig(intake, "responder", "per_second"),
            f"one-insert {baseline_ps:.0f}/s" if baseline_ps else "-",
        ),
        Row("intake_baseline_ratio", ">= 0.45", lambda v: v >= 0.45, dig(intake, "ratio")),
        Row(
            "card_latency_p50_ms",
            "<= 25 @ 20/s",
            lambda v: v <= 25,
            dig(teams, "latency", "p50_ms"),
        ),
        Row(
            "card_latency_p99_ms",
            "<= 100 @ 20/s",
            lambda v: v <= 100,
            dig(teams, "latency", "p99_ms"),
        ),
        Row(
            "teams_cards_per_s",
            ">= 47.5 @ 100 ms",
            lambda v: v >= 47.5,
            dig(teams, "throughput", "steady_cards_per_s"),
            "Teams ceiling 50/s",
        ),
        Row(
            "teams_limit_breaches",
            "0",
            lambda v: v == 0,
            breaches(dig(teams, "throughput", "limits")),
        ),
        Row(
            "notify_msgs_per_s",
            ">= 47.5",
            lambda v: v >= 47.5,
            dig(notify, "result", "per_second"),
            "Notify ceiling 50/s",
        ),
        Row("notify_429s", "0", lambda v: v == 0, dig(notify, "result", "too_many_requests")),
        Row(
            "loop_lag_max_ms",
            "<= 10",
            lambda v: v <= 10,
            dig(notify, "result", "lag", "max_lag_ms"),
            f"idle {idle_lag:.1f} ms" if idle_lag is not None else "-",
            "while sending to Notify",
        ),
        Row(
            "lanes_card_p99_ms",
            "<= 100 @ 20/s",
            lambda v: v <= 100,
            dig(d.get("lanes"), "lanes_card_p99_ms"),
            f"empty queue {dig(d.get('lanes'), 'baseline_p99_ms')} ms" if d.get("lanes") else "-",
            f"{dig(d.get('lanes'), 'settings', 'queued'):,} Notify messages queued"
            if d.get("lanes")
            else "bench/lanes.py absent or failed",
        ),
        Row(
            "bot_turn_cpu_ratio",
            "<= 0.5 x echo",
            lambda v: v <= 0.5,
            dig(councillor, "bot_turn_cpu_ratio"),
            f"echo {echo_ms} ms CPU/turn" if echo_ms is not None else "-",
            f"councillor turn, {tasks:,} tasks" if tasks else "",
        ),
        *(turn_ratio_row(teams, runtime) for runtime in ("agents", "botbuilder")),
        Row(
            "digest_100k_ms",
            "<= 500",
            lambda v: v <= 500,
            digest_ms,
            f"count(*) {dig(digest, 'baseline_count_open_ms')} ms" if digest else "-",
            digest_note,
        ),
        *open311_rows(d.get("open311")),
        *web_rows(d.get("web")),
        *export_rows(d.get("export")),
        Row(
            "peak_rss_mb",
            "<= 200",
            lambda v: v <= 200,
            rss[0],
            "-",
            f"max VmHWM of responder servers (in {rss[1]})" if rss[0] else "",
        ),
        Row(
            "crash_lost",
            "0",
            lambda v: v == 0,
            dig(res, "crash_lost"),
            "-",
            f"{crashes} SIGKILL(s)",
        ),
        Row(
            "crash_duplicates",
            f"<= {crashes} (1/crash)",
            lambda v: v <= crashes,
            dig(res, "crash_duplicates"),
        ),
        Row(
            "faults_delivered_pct",
            "100",
            lambda v: v >= 100.0,
            dig(res, "faults_delivered_pct"),
            "-",
            f"{dig(res, 'faults', 'fault_seconds')} s of 30 % 5xx + 10 % 429" if res else "",
        ),
        Row(
            "fuzz_5xx",
            "0",
            lambda v: v == 0,
            dig(fuzz, "fuzz_5xx"),
            "-",
            f"{dig(fuzz, 'fuzz_requests')} requests" if fuzz else "bench/fuzz.py absent or failed",
        ),
        Row(
            "card_fuzz_5xx",
            "0",
            lambda v: v == 0,
            dig(cards, "card_fuzz_5xx"),
            "-",
            cards_note,
        ),
        Row(
            "card_fuzz_unauthorised_changes",
            "0",
            lambda v: v == 0,
            dig(cards, "card_fuzz_unauthorised_changes"),
            "-",
            "by a stranger, other teams' staff, another ward's councillor" if cards else "",
        ),
        Row(
            "card_fuzz_log_leaks",
            "0",
            lambda v: v == 0,
            dig(cards, "card_fuzz_log_leaks"),
            "-",
            "submitted card text found in the server's log" if cards else "",
        ),
        Row(
            "two_instance_doubles",
            "0",
            lambda v: v == 0,
            dig(res, "two_instance_doubles"),
            "-",
            f"{dig(res, 'two', 'reports')} reports, PostgreSQL" if res else "",
        ),
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--quick", action="store_true", help="each benchmark's --quick sizes")
    p.add_argument("--skip", action="append", default=[], choices=BENCHES, help="leave one out")
    p.add_argument(
        "--collect",
        action="store_true",
        help="run nothing: print the table again from bench/results/run/*.json and the peak "
        "RSS recorded in --output by the run that wrote them",
    )
    p.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.collect:
        return collect(args)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    for stale in RUN_DIR.glob("*.json"):
        stale.unlink()
    started = time.monotonic()
    sampler = RssSampler()
    sampler.start()
    runs: dict[str, dict[str, Any]] = {}
    try:
        for name in BENCHES:
            if name in args.skip:
                continue
            if not (ROOT / "bench" / f"{name}.py").exists():
                print(f"== {name}: bench/{name}.py not present, its figures are missing")
                continue
            runs[name] = run_bench(name, args.quick, sampler)
    finally:
        sampler.stop()
    total = time.monotonic() - started
    peak_by_pid = {str(p): [round(kb / 1024, 1), w] for p, (kb, w) in sampler.peak_kb.items()}
    return report(args, runs, peak_by_pid, total)


def collect(args: argparse.Namespace) -> int:
    previous = json.loads(args.output.read_text())
    runs = {}
    for name, run in previous["benches"].items():
        path = RUN_DIR / f"{name}.json"
        data = json.loads(path.read_text()) if path.exists() else None
        runs[name] = {**run, "data": data}
    args.quick = previous["quick"]
    return report(args, runs, previous["peak_rss_by_pid_mb"], previous["seconds"])


def report(
    args: argparse.Namespace,
    runs: dict[str, dict[str, Any]],
    peak_by_pid: dict[str, list[Any]],
    total: float,
) -> int:
    peak = max(peak_by_pid.values(), default=[None, ""])
    rows = figures(runs, (peak[0], peak[1]), args.quick)

    print(
        f"\nResponder benchmarks{' (--quick)' if args.quick else ''}: {total / 60:.1f} min, "
        f"{os.cpu_count()} CPUs"
    )
    table = [("figure", "goal", "baseline (same run)", "value", "verdict", "note")]
    table += [
        (r.key, r.goal, r.baseline, fmt(r.value), "PASS" if r.met else "FAIL", r.note) for r in rows
    ]
    print_rows(table)
    passed = sum(r.met for r in rows)
    print(f"{passed}/{len(rows)} pass")

    latest: dict[str, Any] = {r.key: r.value for r in rows}
    latest |= {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "seconds": round(total, 1),
        "machine": machine(),
        "pass": {r.key: r.met for r in rows},
        "goals": {r.key: r.goal for r in rows},
        "baselines": {r.key: r.baseline for r in rows},
        "notes": {r.key: r.note for r in rows if r.note},
        "peak_rss_by_pid_mb": peak_by_pid,
        "benches": {n: {"exit": r["exit"], "seconds": r["seconds"]} for n, r in runs.items()},
    }
    assert all(k in latest for k in KEYS)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(latest, indent=2) + "\n")
    print(f"written to {args.output}")
    return 0 if passed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
