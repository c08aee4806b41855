"""A small ETL in Python on the cloacina runtime (embedded, durable).

    python examples/etl.py sqlite:///etl.db
"""

import sys
import time

import cloaca

with cloaca.WorkflowBuilder("python_etl") as builder:
    builder.description("extract numbers, clean and score them in parallel, load a report")

    @cloaca.task()
    def extract(context):
        context.set("numbers", [n for n in context.get("input", []) if isinstance(n, int)])
        context.set("steps", ["extract"])
        return context

    @cloaca.task(dependencies=[extract])
    def clean(context):
        context.set("clean", sorted(n for n in context.get("numbers") if n >= 0))
        context.set("steps", context.get("steps") + ["clean"])
        return context

    @cloaca.task(dependencies=[extract], retry_attempts=3, retry_backoff="fixed", retry_delay_ms=50)
    def score(context):
        context.set("score", sum(context.get("numbers")) / max(len(context.get("numbers")), 1))
        context.set("steps", context.get("steps") + ["score"])
        return context

    @cloaca.task(dependencies=[clean, score])
    def load(context):
        context.set("report", f"{len(context.get('clean'))} clean values, mean {context.get('score'):.1f}")
        return context


url = sys.argv[1] if len(sys.argv) > 1 else "sqlite://:memory:"
with cloaca.DefaultRunner(url) as runner:
    started = time.perf_counter()
    result = runner.execute("python_etl", cloaca.Context({"input": [4, -2, 9, "x", 15]}))
    took = (time.perf_counter() - started) * 1000
    print(f"{result.workflow_name} {result.execution_id}: {result.status} in {took:.1f} ms")
    print(f"  steps  {result.final_context.get('steps')}")
    print(f"  report {result.final_context.get('report')}")
