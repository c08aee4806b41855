#!/usr/bin/env python3
"""Writes docs/PERFORMANCE.md from docs/performance/records.jsonl.

    python3 scripts/performance.py                      # write the page
    python3 scripts/performance.py --merge BENCH FILE --measured-at DATE

The records are the JSON lines the benchmarks append through
cloacina-bench-record ({"bench", "figure", "value", "unit"}), plus the date
they were measured on. `--merge` replaces BENCH's records with FILE's (what
scripts/performance does after each bench); without it the page is written.

The page is one table driven by ROWS below: each figure's label, the aim it
is held to and the reference's figure (colliery-io/cloacina) where one
exists. A record without a row is still shown, at the end of its bench's
group; a row without a record says "not measured". Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORDS = ROOT / "docs" / "performance" / "records.jsonl"
PAGE = ROOT / "docs" / "PERFORMANCE.md"
CHANGES = ROOT / "docs" / "performance" / "changes.md"

# (bench, area, crate), in the table's order.
BENCHES = [
    ("verify", "packages", "cloacina-package"),
    ("call", "plugin calls", "cloacina-loader"),
    ("engine", "engine (embedded)", "cloacina-runtime"),
    ("http", "server HTTP", "cloacina-server"),
    ("load", "load generator", "cloacina-tests"),
    ("graphs", "graphs", "cloacina-server"),
    ("abuse", "abuse / memory", "cloacina-server"),
    ("ready", "readiness", "cloacina-host"),
]
BENCH_ORDER = [bench for bench, _, _ in BENCHES]

# The reference's figures (colliery-io/cloacina 0.8.0), as the brief and
# issue 18 state them: its server measured on this kind of machine over
# HTTP on PostgreSQL, and its published figures.
REF_CHAIN_P50 = "1.1 s p50 (server 0.8.0, PostgreSQL)"
REF_CHAIN_TASKS = "146 tasks/s saturation (server 0.8.0, PostgreSQL)"
REF_CPU_PER_TASK = "8.3 ms per task"
REF_DAG_SQLITE = "about 45 workflows/s (published, SQLite)"
REF_EVENTS = "about 763 events/s (published; in memory, no database, no socket)"
REF_EVENT_P50 = "2.7 ms p50 (published; in memory, no database, no socket)"
REF_UPLOAD = "14-97 s upload to executable (compiles source)"
REF_PUSH = "no events on its socket"


def row(bench, figure, label, aim="", reference=""):
    return {
        "bench": bench,
        "figure": figure,
        "label": label,
        "aim": aim,
        "reference": reference,
    }


def verify_rows():
    rows = []
    for content, name in [("binary_like", "binary-like"), ("incompressible", "incompressible")]:
        for size in (50, 1):
            prefix = f"upload.{content}_{size}mib"
            what = f"{size} MiB {name} package, archive (upload path)"
            rows.append(row("verify", f"{prefix}.ratio", f"verify vs SHA-256, {what}", "≥ 0.5× SHA-256"))
            rows.append(row("verify", f"{prefix}.verify_mb_s", f"verify, {what}"))
    for size in (50, 1):
        what = f"{size} MiB unpacked, extracted cache (load path)"
        rows.append(row("verify", f"extracted.{size}mib.ratio", f"verify vs SHA-256, {what}", "≥ 0.5× SHA-256"))
        rows.append(row("verify", f"extracted.{size}mib.verify_mb_s", f"verify, {what}"))
    rows.append(row("verify", "pack.sign_10mib_ms", "pack + sign a 10 MiB binary-like artifact", "< 1,000 ms"))
    return rows


def call_rows():
    return [
        row("call", "native.call_ns", "native call in process, ~90-byte context (median)", "< 2 µs"),
        row("call", "isolated.call_ns", "native call in a worker process, over a pipe (median)", "< 100 µs"),
        row("call", "isolated.one_caller_calls_per_s", "native calls in worker processes: the pool, one caller"),
        row("call", "isolated.pool_calls_per_s",
            "native calls in worker processes: the pool (a worker per core), a caller per worker"),
        row("call", "wasm.call_ns", "WebAssembly call, fresh pooled instance per call (median)", "< 15 µs"),
        row("call", "wasm.instance_floor_ns", "WebAssembly fresh instance + trivial export (the floor of a call)"),
        row("call", "native.load_ms", "native load: dlopen, layout check, declaration"),
        row("call", "wasm.first_load_ms", "WebAssembly first load: compile, cache write, declaration"),
        row("call", "wasm.cached_load_ms", "WebAssembly load from the compiled cache (a restart, median)", "< 5 ms"),
    ]


def engine_rows():
    rows = []
    for db, name in [("sqlite", "SQLite"), ("postgres", "PostgreSQL")]:
        sqlite = db == "sqlite"
        rows += [
            row("engine", f"{db}.dag5_workflows_per_s", f"{name}: 5-task no-op DAG, 1,000 at once",
                "≥ 3,000 workflows/s" if sqlite else "", REF_DAG_SQLITE if sqlite else ""),
            row("engine", f"{db}.dag5_tasks_per_s", f"{name}: 5-task no-op DAG, 1,000 at once, tasks"),
            row("engine", f"{db}.chain10_p50_ms", f"{name}: 10-task chain, execute → completed, p50",
                "< 10 ms" if sqlite else ""),
            row("engine", f"{db}.chain10_p99_ms", f"{name}: 10-task chain, execute → completed, p99"),
            row("engine", f"{db}.fanout1000_median_ms", f"{name}: 1 → 1,000 → 1 fan-out, median"),
            row("engine", f"{db}.fanout1000_tasks_per_s", f"{name}: 1 → 1,000 → 1 fan-out, tasks"),
            row("engine", f"{db}.raw_commits_per_s", f"{name}: raw commit rate, one client (the physical floor)"),
            row("engine", f"{db}.writer_transactions_per_s", f"{name}: writer transactions during the DAG run"),
            row("engine", f"{db}.writer_commands_per_transaction", f"{name}: commands per writer transaction"),
        ]
    rows += [
        row("engine", "postgres.hosts1.chain10_tasks_per_s", "PostgreSQL: 600 10-task chains at once, one host"),
        row("engine", "postgres.hosts2.chain10_tasks_per_s",
            "PostgreSQL: 600 10-task chains at once, two hosts on one schema (same 2 cores)"),
    ]
    return rows


def http_rows():
    rows = []
    for db, name in [("sqlite", "SQLite"), ("postgres", "PostgreSQL")]:
        sqlite = db == "sqlite"
        for what, label in [
            ("get_running", "GET a running execution (from the database)"),
            ("get_ended", "GET an ended execution (from memory)"),
            ("post_execute", "POST execute, no-op workflow"),
        ]:
            aim = "≥ 15,000 req/s" if what.startswith("get") else ""
            rows += [
                row("http", f"{db}.{what}.requests_per_s", f"{name}: {label}, 32 keep-alive connections", aim),
                row("http", f"{db}.{what}.p50_ms", f"{name}: {label}, p50"),
                row("http", f"{db}.{what}.p99_ms", f"{name}: {label}, p99"),
            ]
        rows += [
            row("http", f"{db}.chain10_p50_ms", f"{name}: 10-task chain, execute → Completed (polled), p50",
                "< 5 ms" if sqlite else "< 12 ms", "" if sqlite else REF_CHAIN_P50),
            row("http", f"{db}.chain10_p99_ms", f"{name}: 10-task chain, execute → Completed (polled), p99"),
            row("http", f"{db}.chains_tasks_per_s", f"{name}: 1,000 10-task chains started at once",
                "≥ 8,000 tasks/s" if sqlite else "≥ 5,000 tasks/s", "" if sqlite else REF_CHAIN_TASKS),
            row("http", f"{db}.first_push_p50_ms", f"{name}: POST execute → first event pushed on the socket, p50",
                "", REF_PUSH),
            row("http", f"{db}.first_push_p99_ms", f"{name}: POST execute → first event pushed on the socket, max of 20"),
        ]
    return rows


def load_rows():
    rows = []
    for config, name in [
        ("sqlite", "SQLite, worker processes (server defaults)"),
        ("postgres", "PostgreSQL, worker processes (server defaults)"),
        ("sqlite_in_process", "SQLite, in process"),
        ("postgres_in_process", "PostgreSQL, in process"),
    ]:
        sqlite = config.startswith("sqlite")
        defaults = "in_process" not in config
        aims = defaults
        reference = defaults and not sqlite
        rows += [
            row("load", f"{config}.latency_p50_ms", f"{name}: chain10 execute → Completed, p50",
                ("< 5 ms" if sqlite else "< 12 ms") if aims else "", REF_CHAIN_P50 if reference else ""),
            row("load", f"{config}.latency_p95_ms", f"{name}: chain10 execute → Completed, p95"),
            row("load", f"{config}.latency_p99_ms", f"{name}: chain10 execute → Completed, p99"),
            row("load", f"{config}.throughput_tasks_per_s", f"{name}: chain10 throughput, to the last completion",
                ("≥ 8,000 tasks/s" if sqlite else "≥ 5,000 tasks/s") if aims else "",
                REF_CHAIN_TASKS if reference else ""),
            row("load", f"{config}.throughput_accepted_per_s",
                f"{name}: executions accepted/s while they run (32 clients)",
                "≥ 1,500 executions/s" if aims and not sqlite else ""),
        ]
        rows += [
            row("load", f"{config}.mixed_writes_per_s", f"{name}: mixed, executions written/s (16 writers)"),
            row("load", f"{config}.mixed_reads_per_s", f"{name}: mixed, reads/s (16 readers)"),
            row("load", f"{config}.mixed_read_p50_ms", f"{name}: mixed, read p50"),
            row("load", f"{config}.mixed_read_p99_ms", f"{name}: mixed, read p99"),
            row("load", f"{config}.mixed_completed_per_s", f"{name}: mixed, executions completed/s meanwhile"),
        ]
        rows += [
            row("load", f"{config}.cpu_per_task_ms", f"{name}: CPU per task, host + database (throughput part)",
                "< 0.3 ms" if aims else "", REF_CPU_PER_TASK if reference else ""),
            row("load", f"{config}.cpu_host_per_task_ms", f"{name}: CPU per task, server and its workers"),
        ]
        if not sqlite:
            rows.append(row("load", f"{config}.cpu_database_per_task_ms",
                            f"{name}: CPU per task, PostgreSQL's processes"))
        rows.append(row("load", f"{config}.server_peak_rss_mib", f"{name}: server peak RSS"))
    return rows


def graphs_rows():
    rows = []
    for db, name in [("sqlite", "SQLite"), ("postgres", "PostgreSQL")]:
        sqlite = db == "sqlite"
        rows += [
            row("graphs", f"{db}.ack_p50_ms", f"{name}: frame → durable ack, one in flight, p50",
                "≤ 0.5 ms" if sqlite else "≤ 3 ms"),
            row("graphs", f"{db}.ack_p99_ms", f"{name}: frame → durable ack, one in flight, p99"),
            row("graphs", f"{db}.acked_events_per_s", f"{name}: acked events/s, one connection, 1,024 in flight",
                "≥ 20,000 events/s" if sqlite else "≥ 10,000 events/s", REF_EVENTS),
            row("graphs", f"{db}.fire_p50_ms", f"{name}: frame → first node call (when_any, latest), p50",
                "≤ 1 ms" if sqlite else "≤ 4 ms", REF_EVENT_P50),
            row("graphs", f"{db}.fire_p99_ms", f"{name}: frame → first node call (when_any, latest), p99"),
            row("graphs", f"{db}.native.firings_per_s", f"{name}: sequential firings, 3-node graph, native",
                "≥ 5,000 firings/s" if sqlite else "≥ 2,000 firings/s"),
            row("graphs", f"{db}.wasm.firings_per_s", f"{name}: sequential firings, 3-node graph, WebAssembly",
                "≥ 2,000 firings/s" if sqlite else "≥ 1,000 firings/s"),
            row("graphs", f"{db}.panic_live_p50_ms", f"{name}: reactor panic → live, p50", "≤ 100 ms"),
            row("graphs", f"{db}.panic_live_max_ms", f"{name}: reactor panic → live, max", "≤ 100 ms"),
        ]
    rows += [
        row("graphs", "two_hosts.remote_fire_p50_ms",
            "two hosts, PostgreSQL: event at the non-owner → node call on the owner, p50"),
        row("graphs", "two_hosts.remote_fire_p99_ms",
            "two hosts, PostgreSQL: event at the non-owner → node call on the owner, p99"),
        row("graphs", "two_hosts.handover_p50_ms", "two hosts, PostgreSQL: graceful handover, p50"),
        row("graphs", "two_hosts.handover_max_ms", "two hosts, PostgreSQL: graceful handover, max"),
        row("graphs", "two_hosts.failover_p50_ms", "two hosts, PostgreSQL: failover after the owner died (lease TTL 2 s), p50"),
        row("graphs", "two_hosts.failover_max_ms", "two hosts, PostgreSQL: failover after the owner died (lease TTL 2 s), max"),
    ]
    return rows


def abuse_rows():
    return [
        row("abuse", "idle.rss_mib", "idle server RSS (cloacina-server process, SQLite)"),
        row("abuse", "sockets.peak_rss_mib",
            "peak RSS: 8 sockets holding 63 KiB unfinished messages + 8 announcing 48 MiB"),
        row("abuse", "sockets.rss_mib", "RSS with those 16 sockets open"),
        row("abuse", "swollen_uploads.peak_rss_mib",
            "peak RSS: two uploads at once, each unpacking to 509 MiB, registered and loaded"),
        row("abuse", "swollen_uploads.slowest_health_ms", "slowest /health during those two uploads"),
        row("abuse", "dense_upload.peak_rss_mib",
            "peak RSS: one incompressible upload near the 64 MiB cap, registered and loaded",
            "≤ about 420 MiB (16 MiB + 6 × the archive)"),
        row("abuse", "dense_upload.slowest_health_ms", "slowest /health during that upload"),
    ]


def ready_rows():
    rows = []
    for kind, name in [("native", "native"), ("wasm", "WebAssembly")]:
        for size, size_name in [("small", "small"), ("20mib", "20 MiB")]:
            prefix = f"{kind}_{size}"
            rows += [
                row("ready", f"{prefix}.cold_ms", f"upload → executable, {size_name} {name} package, new host (cold)",
                    "", REF_UPLOAD if size == "small" else ""),
                row("ready", f"{prefix}.cached_ms",
                    f"upload → executable, {size_name} {name} package, again from the cache"),
            ]
    rows += [
        row("ready", "native_small_worker.cold_ms",
            "upload → executable, small native package in a worker process (server default), cold", "", REF_UPLOAD),
        row("ready", "native_small_worker.cached_ms",
            "upload → executable, small native package in a worker process, again from the cache"),
    ]
    return rows


ROWS = (
    verify_rows()
    + call_rows()
    + engine_rows()
    + http_rows()
    + load_rows()
    + graphs_rows()
    + abuse_rows()
    + ready_rows()
)


# --- records ------------------------------------------------------------


def read_records(path: Path) -> list[dict]:
    """The records in `path` (none when it is missing); bad lines are skipped with a warning."""
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            print(f"warning: {path}:{number}: not JSON ({error}); skipped", file=sys.stderr)
            continue
        if not isinstance(record, dict) or not isinstance(record.get("bench"), str) \
                or not isinstance(record.get("figure"), str):
            print(f"warning: {path}:{number}: no bench or figure; skipped", file=sys.stderr)
            continue
        records.append(record)
    return records


def bench_rank(bench: str) -> int:
    return BENCH_ORDER.index(bench) if bench in BENCH_ORDER else len(BENCH_ORDER)


def merge(bench: str, new_file: Path, measured_at: str) -> None:
    """Replaces `bench`'s records with those in `new_file`, stamped `measured_at`."""
    kept = [r for r in read_records(RECORDS) if r["bench"] != bench]
    fresh = []
    for record in read_records(new_file):
        if record["bench"] != bench:
            print(f"warning: {new_file}: a record of bench {record['bench']!r}, not {bench!r}; skipped",
                  file=sys.stderr)
            continue
        record["measured_at"] = measured_at
        fresh.append(record)
    if not fresh:
        print(f"warning: bench {bench} recorded no figure; its previous records are kept", file=sys.stderr)
        return
    # Grouped by bench in the table's order, each bench's in recording order.
    records = sorted(kept + fresh, key=lambda r: bench_rank(r["bench"]))
    RECORDS.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    temporary = RECORDS.with_suffix(".jsonl.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(RECORDS)
    print(f"{RECORDS.relative_to(ROOT)}: {len(fresh)} figures of {bench} ({measured_at}), {len(kept)} of other benches kept")


# --- formatting ---------------------------------------------------------


def number(value: float) -> str:
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def formatted(record: dict) -> str:
    value, unit = record.get("value"), record.get("unit") or ""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "n/a"
    value = float(value)
    if unit == "ns":
        return f"{number(value / 1000)} µs" if value >= 1000 else f"{value:.0f} ns"
    if unit == "x SHA-256":
        return f"{value:.2f}× SHA-256"
    return f"{number(value)} {unit}".rstrip()


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# --- the machine --------------------------------------------------------


def command_output(*command: str) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    text = done.stdout.strip()
    return text if done.returncode == 0 and text else None


def machine() -> list[tuple[str, str]]:
    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / (1024 * 1024):.1f} GiB"
                break
    except (OSError, ValueError, IndexError):
        pass
    system = None
    try:
        for line in Path("/etc/os-release").read_text(encoding="utf-8").splitlines():
            if line.startswith("PRETTY_NAME="):
                system = line.split("=", 1)[1].strip().strip('"')
                break
    except OSError:
        pass
    kernel = f"{platform.system()} {platform.release()}".strip()
    system = f"{system} ({kernel})" if system else kernel
    return [
        ("CPU", cpu or platform.processor() or platform.machine() or "unknown"),
        ("cores", str(os.cpu_count() or "unknown")),
        ("memory", memory or "unknown"),
        ("OS", system or "unknown"),
        ("Rust", command_output("rustc", "--version") or "rustc not found"),
        ("PostgreSQL", command_output("psql", "--version") or "psql not found"),
    ]


# --- the page -----------------------------------------------------------


def render() -> str:
    records = read_records(RECORDS)
    latest = {}
    for record in records:
        latest[(record["bench"], record["figure"])] = record
    specified = {(r["bench"], r["figure"]) for r in ROWS}
    areas = {bench: area for bench, area, _ in BENCHES}
    crates = {bench: crate for bench, _, crate in BENCHES}

    groups = [(bench, [r for r in ROWS if r["bench"] == bench]) for bench in BENCH_ORDER]
    others = sorted({r["bench"] for r in records} - set(BENCH_ORDER))
    groups += [(bench, []) for bench in others]

    lines = []
    measured = not_measured = 0
    for bench, rows in groups:
        extra = [
            row(bench, r["figure"], f"`{r['figure']}`")
            for r in records
            if r["bench"] == bench and (bench, r["figure"]) not in specified
        ]
        seen = set()
        first = True
        for spec in rows + extra:
            if spec["figure"] in seen:
                continue
            seen.add(spec["figure"])
            record = latest.get((bench, spec["figure"]))
            if record is None:
                value = "not measured"
                not_measured += 1
            else:
                value = formatted(record)
                measured += 1
            area = f"**{areas.get(bench, bench)}**" if first else ""
            first = False
            lines.append(
                "| " + " | ".join(cell(text) for text in [
                    area,
                    spec["label"],
                    value,
                    spec["aim"],
                    spec["reference"],
                    f"`scripts/performance {bench}`",
                ]) + " |"
            )

    dates = sorted({r["measured_at"] for r in records if isinstance(r.get("measured_at"), str)})
    if not dates:
        when = "Nothing has been measured yet: run `scripts/performance`."
    elif len(dates) == 1:
        when = f"Measured on {dates[0]}."
    else:
        when = f"Measured between {dates[0]} and {dates[-1]} (each bench's date is listed under the table)."

    out = [
        "# Performance",
        "",
        "Every figure this project measures, in one table: what it is, its value, the aim",
        "it is held to, the reference's figure where one exists (colliery-io/cloacina,",
        "the system this one replaces), and the command that measures it again.",
        "",
        "```sh",
        "scripts/performance                # every bench, then this page (a long run)",
        "scripts/performance http graphs    # only these benches; the other rows keep their figures",
        "scripts/performance --render       # this page again from the records, measuring nothing",
        "```",
        "",
        "The figures come from release builds (`cargo bench`) on the machine described",
        "below; a load generator, where there is one, shares the machine's cores with",
        "the server unless its row says it runs in a process of its own. Benchmarks are",
        "never timed tests: a figure that misses its aim is shown as it is. Each bench",
        "appends its figures to `docs/performance/records.jsonl` (through",
        "`tests/bench-record`); `scripts/performance.py` writes this page from them, so",
        "edit that script, not this file. " + when,
        "",
        "## Machine",
        "",
        "Read when this page was written (`scripts/performance` measures and writes in",
        "one run on one machine):",
        "",
    ]
    out += [f"- {name}: {value}" for name, value in machine()]
    out += [
        "",
        "## Figures",
        "",
        f"{measured} figures measured, {not_measured} not measured.",
        "",
        "| area | figure | value | aim | reference (colliery-io/cloacina) | command |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    out += lines
    out += [
        "",
        "Each `scripts/performance BENCH` runs one benchmark with its records switched on:",
        "",
    ]
    for bench, _, crate in BENCHES:
        bench_dates = sorted({
            r["measured_at"] for r in records
            if r["bench"] == bench and isinstance(r.get("measured_at"), str)
        })
        stamp = f"measured {', '.join(bench_dates)}" if bench_dates else "not measured yet"
        out.append(f"- `{bench}`: `cargo bench -p {crate} --bench {bench}` ({stamp})")
    for bench in others:
        out.append(f"- `{bench}`: not a bench `scripts/performance` knows; its records are shown as they are")
    out += [
        "",
        "The reference's figures: its server 0.8.0 measured on this kind of machine over",
        "HTTP on PostgreSQL (a 10-task no-op chain, 8.3 ms of CPU per task, uploads that",
        "compile source), and the figures it publishes (about 45 workflows/s on SQLite;",
        "about 763 events/s and 2.7 ms p50 for graphs, in memory with no database and",
        "no socket). Aims are those of the design brief, issue 18 and the crates' READMEs.",
        "",
    ]
    # What changed the figures, written by hand beside the records (the
    # tables there are before/after runs of one commit each, kept as measured).
    if CHANGES.is_file():
        out += ["", CHANGES.read_text(encoding="utf-8").rstrip(), ""]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description="Writes docs/PERFORMANCE.md from docs/performance/records.jsonl.")
    parser.add_argument("--merge", nargs=2, metavar=("BENCH", "FILE"),
                        help="replace BENCH's records with FILE's, then stop (the page is not written)")
    parser.add_argument("--measured-at", metavar="DATE", help="the date stamped on merged records (UTC, YYYY-MM-DD)")
    args = parser.parse_args()
    if args.merge:
        if not args.measured_at:
            parser.error("--merge needs --measured-at")
        bench, new_file = args.merge
        merge(bench, Path(new_file), args.measured_at)
        return 0
    PAGE.write_text(render(), encoding="utf-8")
    print(f"{PAGE.relative_to(ROOT)} written from {RECORDS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
