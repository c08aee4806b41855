"""Latency and throughput of cloaca's DefaultRunner on SQLite and PostgreSQL.

Run it with the interpreter of the virtualenv cloaca is installed in:

    /path/to/venv/bin/python python/benches/bench.py [--sqlite-only] [--json]

It measures, on a fresh SQLite file in a temporary directory and on a fresh
PostgreSQL schema (dropped at the end; ``--postgres-url``, default
postgres://postgres@127.0.0.1:5432/test, skipped with a note when the
server cannot be reached or with ``--sqlite-only``):

* ``execute`` of a 10-task chain of no-op Python tasks, one after another
  (``--iterations``, after ``--warmup`` runs): p50/p95/p99/mean in ms;
* ``execute`` of a 1 -> 100 -> 1 fan-out (102 tasks; ``--fanout-iterations``,
  after one warm-up run): p50/p95 in ms and tasks/s;
* ``--concurrent`` 10-task chains started with ``runner.start`` and then
  each waited for: executions/s and tasks/s;
* ``DefaultRunner(url)`` construction until it returns ready (which
  includes registering the two benchmark workflows), then ``shutdown()``
  (``--startups`` times): on a fresh database each time, and on the
  existing one the other figures were taken on.

It prints a table per backend, or one JSON object with ``--json``, with
the load average before and after: other work on the machine (a build,
say) shows in every figure.

The figures depend on the build of the native module. ``maturin develop``
(what python/run-tests does) builds the debug profile; for release figures
install with ``pip install ./python`` first. The script prints the loaded
``cloaca/_native*.so`` with its size, whether cloaca is an editable install
(``maturin develop``) or a wheel, and, when the module is byte-identical to
a build under a cargo target directory, that build's profile. (Both
profiles of this workspace keep line tables, so debug info in the file
tells nothing.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager, nullcontext
from importlib import metadata
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlsplit

import cloaca

DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/test"
CHAIN = "bench_chain_10"
CHAIN_TASKS = 10
FANOUT = "bench_fanout_100"
FANOUT_WIDTH = 100
FANOUT_TASKS = FANOUT_WIDTH + 2
# The aims for the 10-task chain's p50 (the reference cloaca takes about
# 1 s per chain by construction: it polls for ready tasks).
CHAIN_P50_AIM_MS = {"sqlite": 20.0, "postgresql": 40.0}
WAIT_TIMEOUT_S = 600.0


# --- workflows -------------------------------------------------------------

def noop(context):
    return context


def register_workflows() -> None:
    """The 10-task chain and the 1 -> 100 -> 1 fan-out, of no-op tasks."""
    with cloaca.WorkflowBuilder(CHAIN):
        previous: List[str] = []
        for i in range(CHAIN_TASKS):
            cloaca.task(id=f"step_{i}", dependencies=previous)(noop)
            previous = [f"step_{i}"]
    with cloaca.WorkflowBuilder(FANOUT):
        cloaca.task(id="source")(noop)
        branches = [f"branch_{i}" for i in range(FANOUT_WIDTH)]
        for branch in branches:
            cloaca.task(id=branch, dependencies=["source"])(noop)
        cloaca.task(id="sink", dependencies=branches)(noop)


# --- statistics ------------------------------------------------------------

def percentile(samples: List[float], p: float) -> float:
    """The p-th percentile, interpolating between the closest ranks."""
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(samples_ms: List[float]) -> Dict[str, float]:
    return {
        "runs": len(samples_ms),
        "p50_ms": percentile(samples_ms, 50),
        "p95_ms": percentile(samples_ms, 95),
        "p99_ms": percentile(samples_ms, 99),
        "mean_ms": sum(samples_ms) / len(samples_ms),
        "min_ms": min(samples_ms),
        "max_ms": max(samples_ms),
    }


def timed_ms(action: Callable[[], object]) -> Tuple[float, object]:
    started = time.perf_counter()
    value = action()
    return (time.perf_counter() - started) * 1000, value


# --- databases -------------------------------------------------------------

class Backend:
    """Fresh databases of one kind: ``fresh`` names a new one, ``runner``
    opens a runner on it, ``drop`` removes it."""

    name = ""

    def fresh(self) -> str:
        raise NotImplementedError

    def runner(self, location: str) -> cloaca.DefaultRunner:
        raise NotImplementedError

    def drop(self, location: str) -> None:
        raise NotImplementedError

    def describe(self, location: str) -> str:
        return location


class SQLite(Backend):
    name = "sqlite"

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def fresh(self) -> str:
        return f"sqlite://{self.directory}/bench_{uuid.uuid4().hex[:8]}.db"

    def runner(self, location: str) -> cloaca.DefaultRunner:
        return cloaca.DefaultRunner(location)

    def drop(self, location: str) -> None:
        path = Path(location[len("sqlite://"):])
        for leftover in path.parent.glob(path.name + "*"):
            leftover.unlink()


class PostgreSQL(Backend):
    """Each fresh database is a new schema on the server at ``url``."""

    name = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url

    def fresh(self) -> str:
        return f"cloaca_bench_{uuid.uuid4().hex[:12]}"

    def runner(self, location: str) -> cloaca.DefaultRunner:
        return cloaca.DefaultRunner.with_schema(self.url, location)

    def drop(self, location: str) -> None:
        cloaca.DatabaseAdmin(self.url).remove_tenant(location, location)

    def describe(self, location: str) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}:{parts.port or 5432}{parts.path}, schema {location}"


@contextmanager
def fresh_database(backend: Backend) -> Iterator[str]:
    location = backend.fresh()
    try:
        yield location
    finally:
        try:
            backend.drop(location)
        except Exception as error:  # noqa: BLE001 - report, keep going
            print(f"note: could not drop {backend.describe(location)}: {error}", file=sys.stderr)


def postgres_unreachable(url: str) -> Optional[str]:
    """Why the server at ``url`` cannot be reached, or None."""
    parts = urlsplit(url)
    host, port = parts.hostname or "localhost", parts.port or 5432
    try:
        with socket.create_connection((host, port), timeout=3):
            return None
    except OSError as error:
        return f"cannot connect to {host}:{port} ({error})"


# --- benchmarks ------------------------------------------------------------

class Failures:
    """Executions that did not complete, kept for the report."""

    def __init__(self) -> None:
        self.items: List[str] = []

    def check(self, what: str, result: cloaca.WorkflowResult) -> None:
        if result.status != "Completed":
            self.items.append(f"{what}: {result.status} ({result.error_message}; {result.task_errors})")


def bench_sequential(runner: cloaca.DefaultRunner, workflow: str, runs: int, warmup: int,
                     failures: Failures) -> List[float]:
    """``execute`` latencies in ms of ``runs`` executions one after another."""
    for _ in range(warmup):
        failures.check(f"{workflow} (warm-up)", runner.execute(workflow, {}))
    samples = []
    for _ in range(runs):
        elapsed, result = timed_ms(lambda: runner.execute(workflow, {}))
        failures.check(workflow, result)
        samples.append(elapsed)
    return samples


def bench_concurrent(runner: cloaca.DefaultRunner, count: int, failures: Failures) -> Dict[str, float]:
    """``count`` chains started at once, then waited for."""
    started = time.perf_counter()
    ids = [runner.start(CHAIN, {}) for _ in range(count)]
    all_started = time.perf_counter()
    for execution_id in ids:
        failures.check(f"{CHAIN} (concurrent)", runner.wait(execution_id, WAIT_TIMEOUT_S))
    seconds = time.perf_counter() - started
    return {
        "executions": count,
        "start_all_s": all_started - started,
        "total_s": seconds,
        "executions_per_s": count / seconds,
        "tasks_per_s": count * CHAIN_TASKS / seconds,
    }


def bench_startup(backend: Backend, location: Optional[str], repeats: int) -> Dict[str, List[float]]:
    """Runner construction and shutdown times in ms: on ``location`` (an
    existing database) or, when it is None, on a fresh one each time."""
    starts, shutdowns = [], []
    for _ in range(repeats):
        database = fresh_database(backend) if location is None else nullcontext(location)
        with database as where:
            elapsed, runner = timed_ms(lambda: backend.runner(where))
            starts.append(elapsed)
            shutdowns.append(timed_ms(runner.shutdown)[0])
    return {"start": starts, "shutdown": shutdowns}


def run_backend(backend: Backend, args: argparse.Namespace) -> Dict[str, object]:
    failures = Failures()
    figures: Dict[str, object] = {}
    with fresh_database(backend) as location:
        figures["database"] = backend.describe(location)
        progress(f"{backend.name}: opening {figures['database']}")
        first_start, runner = timed_ms(lambda: backend.runner(location))
        figures["first_start_ms"] = first_start
        try:
            progress(f"{backend.name}: 10-task chain x {args.iterations}")
            chain = summary(bench_sequential(runner, CHAIN, args.iterations, args.warmup, failures))
            chain["aim_p50_ms"] = CHAIN_P50_AIM_MS[backend.name]
            chain["aim_met"] = chain["p50_ms"] < chain["aim_p50_ms"]
            figures["chain"] = chain

            progress(f"{backend.name}: 1 -> {FANOUT_WIDTH} -> 1 fan-out x {args.fanout_iterations}")
            fanout_samples = bench_sequential(runner, FANOUT, args.fanout_iterations, 1, failures)
            fanout = summary(fanout_samples)
            fanout["tasks_per_s"] = FANOUT_TASKS * len(fanout_samples) / (sum(fanout_samples) / 1000)
            figures["fanout"] = fanout

            progress(f"{backend.name}: {args.concurrent} concurrent chains")
            figures["concurrent"] = bench_concurrent(runner, args.concurrent, failures)
        finally:
            runner.shutdown()

        progress(f"{backend.name}: runner start x {args.startups}, existing database")
        existing = bench_startup(backend, location, args.startups)
    progress(f"{backend.name}: runner start x {args.startups}, fresh database")
    fresh = bench_startup(backend, None, args.startups)
    figures["start_fresh"] = summary(fresh["start"])
    figures["start_existing"] = summary(existing["start"])
    figures["shutdown"] = summary(fresh["shutdown"] + existing["shutdown"])
    figures["failures"] = failures.items
    return figures


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


# --- the build -------------------------------------------------------------

def native_build() -> Dict[str, object]:
    """The loaded native module: its path and size, how cloaca was
    installed, and the profile when the module is byte-identical to a
    build under a cargo target directory."""
    path = Path(cloaca._native.__file__)
    data = path.read_bytes()
    return {
        "path": str(path),
        "size_mb": round(len(data) / 1e6, 1),
        "install": install_kind(),
        "profile": same_build_as(data) or "not determined",
        "version": cloaca.__version__,
        "max_concurrent_tasks": cloaca.DefaultRunnerConfig().max_concurrent_tasks,
    }


def install_kind() -> str:
    try:
        direct_url = json.loads(metadata.distribution("cloaca").read_text("direct_url.json") or "{}")
    except (metadata.PackageNotFoundError, ValueError):
        return "unknown"
    if direct_url.get("dir_info", {}).get("editable"):
        return "editable (maturin develop: debug profile unless --release)"
    return "wheel (pip install ./python: release profile)"


def target_dirs() -> List[Path]:
    """Where cargo may have built the module: $CARGO_TARGET_DIR, the
    directory holding this virtualenv (python/run-tests makes it
    <target>/cloaca-venv) and the repository's target/."""
    repo = Path(cloaca.__file__).resolve().parents[2]
    found = [os.environ.get("CARGO_TARGET_DIR"), Path(sys.prefix).parent, repo / "target"]
    return [Path(d) for d in found if d]


def same_build_as(data: bytes) -> Optional[str]:
    digest = hashlib.sha256(data).digest()
    for target in target_dirs():
        for profile in ("debug", "release"):
            built = target / profile / "lib_native.so"
            if built.is_file() and built.stat().st_size == len(data) \
                    and hashlib.sha256(built.read_bytes()).digest() == digest:
                return f"{profile} (same file as {built})"
    return None


# --- output ----------------------------------------------------------------

TITLES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def row(label: str, stats: Dict[str, float], extra: str = "", p99: bool = True) -> str:
    cells = [f"{stats['p50_ms']:8.1f}", f"{stats['p95_ms']:8.1f}",
             f"{stats['p99_ms']:8.1f}" if p99 else f"{'':>8}",
             f"{stats['mean_ms']:8.1f}", f"{stats['max_ms']:8.1f}"]
    return f"  {label:<34}{stats['runs']:>5} {' '.join(cells)}  {extra}".rstrip()


def print_backend(name: str, figures: Dict[str, object]) -> None:
    print(f"\n{TITLES[name]}")
    if "skipped" in figures:
        print(f"  skipped: {figures['skipped']}")
        return
    if "error" in figures:
        print(f"  stopped by an error: {figures['error']}")
        return
    print(f"  database: {figures['database']}")
    print(f"  {'':<34}{'runs':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'max ms':>8}")
    chain = figures["chain"]
    verdict = "met" if chain["aim_met"] else "NOT met"
    print(row("10-task chain, execute", chain, f"aim: p50 < {chain['aim_p50_ms']:.0f} ms ({verdict})"))
    fanout = figures["fanout"]
    print(row(f"1->{FANOUT_WIDTH}->1 fan-out, execute", fanout, f"{fanout['tasks_per_s']:.0f} tasks/s", p99=False))
    print(row("runner start, fresh database", figures["start_fresh"], p99=False))
    print(row("runner start, existing database", figures["start_existing"], p99=False))
    print(row("runner shutdown", figures["shutdown"], p99=False))
    concurrent = figures["concurrent"]
    print(f"  {CHAIN_TASKS}-task chains started concurrently: {concurrent['executions']} in "
          f"{concurrent['total_s']:.2f} s (all started after {concurrent['start_all_s']:.2f} s): "
          f"{concurrent['executions_per_s']:.1f} executions/s, {concurrent['tasks_per_s']:.0f} tasks/s")
    print(f"  first runner start (fresh database, before the runs): {figures['first_start_ms']:.1f} ms")
    print("  (reference cloaca: ~1 s per 10-task chain, by construction)")
    for failure in figures["failures"]:
        print(f"  NOT COMPLETED: {failure}")


def print_report(report: Dict[str, object]) -> None:
    build = report["build"]
    settings = report["settings"]
    host = report["host"]
    print(f"cloaca {build['version']}, native module {build['path']} ({build['size_mb']} MB)")
    print(f"installed: {build['install']}; build profile: {build['profile']}")
    print(f"max_concurrent_tasks={build['max_concurrent_tasks']} (default); "
          + ", ".join(f"{k}={v}" for k, v in settings.items()))
    print(f"{host['cpus']} CPUs; 1-minute load average {host['load_before']:.2f} before, "
          f"{host['load_after']:.2f} after")
    for name, figures in report["backends"].items():
        print_backend(name, figures)


# --- main ------------------------------------------------------------------

def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=200, help="10-task chain runs (default 200)")
    parser.add_argument("--warmup", type=int, default=10, help="chain warm-up runs (default 10)")
    parser.add_argument("--fanout-iterations", type=int, default=20, help="fan-out runs (default 20)")
    parser.add_argument("--concurrent", type=int, default=200,
                        help="chains started concurrently (default 200)")
    parser.add_argument("--startups", type=int, default=10, help="runner starts timed (default 10)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL,
                        help=f"PostgreSQL server (default {DEFAULT_POSTGRES_URL})")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    for name in ("iterations", "fanout_iterations", "concurrent", "startups"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be at least 0")
    return args


def measure(backend: Backend, args: argparse.Namespace) -> Dict[str, object]:
    try:
        return run_backend(backend, args)
    except Exception as error:  # noqa: BLE001 - one backend's error ends only its figures
        return {"error": f"{type(error).__name__}: {error}"}


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    register_workflows()
    report: Dict[str, object] = {
        "build": native_build(),
        "settings": {k: getattr(args, k) for k in
                     ("iterations", "warmup", "fanout_iterations", "concurrent", "startups")},
        "host": {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0]},
        "backends": {},
    }
    with tempfile.TemporaryDirectory(prefix="cloaca-bench-") as directory:
        report["backends"]["sqlite"] = measure(SQLite(directory), args)
    if args.sqlite_only:
        report["backends"]["postgresql"] = {"skipped": "--sqlite-only"}
    else:
        unreachable = postgres_unreachable(args.postgres_url)
        report["backends"]["postgresql"] = (
            {"skipped": unreachable} if unreachable else measure(PostgreSQL(args.postgres_url), args)
        )
    report["host"]["load_after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 1 if any("error" in f for f in report["backends"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
