"""Workflows run through DefaultRunner the way a user runs them."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import cloaca


def test_the_seed_quick_reference_runs_as_written(tmp_path):
    # The seed's module-level form (which cloaca 0.8.0 itself refused).
    script = textwrap.dedent(
        """
        import cloaca

        # Define task
        @cloaca.task(id="my_task")
        def my_task(context):
            return context

        # Build and register workflow
        def create_workflow():
            builder = cloaca.WorkflowBuilder("my_workflow")
            builder.add_task("my_task")
            return builder.build()

        cloaca.register_workflow_constructor("my_workflow", create_workflow)

        # Execute workflow
        runner = cloaca.DefaultRunner("sqlite:///app.db")
        context = cloaca.Context({"key": "value"})
        result = runner.execute("my_workflow", context)
        runner.shutdown()
        print(result.status, result.final_context.get("key"))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Completed value"
    assert (tmp_path / "app.db").exists(), "sqlite:///app.db is app.db in the working directory"


def test_a_dag_joins_branches_and_final_context_is_the_sinks(runner, name):
    with cloaca.WorkflowBuilder(name) as builder:
        builder.description("fan out and join")

        @cloaca.task()
        def extract(context):
            context.set("seen", ["extract"])
            context.set("meta", {"source": "db"})
            return context

        @cloaca.task(dependencies=[extract])
        def left(context):
            context.set("seen", context.get("seen") + ["left"])
            context.set("meta", {**context.get("meta"), "left": 1})
            return context

        @cloaca.task(dependencies=["extract"])
        def right(context):
            context.set("seen", context.get("seen") + ["right"])
            context.set("meta", {**context.get("meta"), "right": 2})
            return context

        @cloaca.task(dependencies=[left, right])
        def join(context):
            context.set("count", len(context.get("seen")))
            return context

    result = runner.execute(name, cloaca.Context({"job": 7}))
    assert result.status == "Completed"
    assert result.error_message is None
    final = result.final_context
    # Arrays unite at the join (both branches' entries, in order, once);
    # objects merge deeply.
    assert final.get("seen") == ["extract", "left", "right"]
    assert final.get("meta") == {"source": "db", "left": 1, "right": 2}
    assert final.get("count") == 3
    assert final.get("job") == 7
    assert result.workflow_name == name
    assert result.duration is not None and result.duration >= 0
    assert result.start_time.endswith("Z") and result.end_time is not None


def test_returning_none_passes_the_input_on_and_drops_in_place_changes(runner, name):
    with cloaca.WorkflowBuilder(name):

        @cloaca.task()
        def touch(context):
            context.set("changed", True)

        @cloaca.task(dependencies=["touch"])
        def after(context):
            context.set("saw_change", context.get("changed", False))
            return context

    result = runner.execute(name, {"a": 1})
    assert result.status == "Completed"
    assert result.final_context.to_dict() == {"a": 1, "saw_change": False}


def test_a_returned_context_replaces_the_input(runner, name):
    with cloaca.WorkflowBuilder(name):

        @cloaca.task()
        def scrub(context):
            context.remove("password")
            context.set("user", "ada")
            return context

        @cloaca.task(dependencies=["scrub"])
        def later(context):
            context.set("saw_password", "password" in context)
            return context

    final = runner.execute(name, {"password": "hunter2", "n": 1}).final_context
    assert final.to_dict() == {"n": 1, "user": "ada", "saw_password": False}


def test_a_raising_task_fails_the_execution_with_its_error_recorded(runner, name):
    failures = []

    with cloaca.WorkflowBuilder(name):

        @cloaca.task(retry_attempts=2, retry_backoff="fixed", retry_delay_ms=10,
                     on_failure=lambda task_id, error, ctx: failures.append((task_id, error, ctx.get("n"))))
        def boom(context):
            raise KeyError("no such row")

        @cloaca.task(dependencies=["boom"])
        def downstream(context):
            return context

    result = runner.execute(name, {"n": 5})
    assert result.status == "Failed"
    assert result.error_message == "1 task(s) failed, 0 completed, 1 skipped"
    assert result.failed_task == "boom"
    assert "Python task execution failed: KeyError: 'no such row'" in result.task_errors["boom"]
    # on_failure runs on every failed attempt, with the task's input.
    assert failures == [("boom", "Python task execution failed: KeyError: 'no such row'", 5)] * 2
    # The runner is still usable.
    with cloaca.WorkflowBuilder(name + "_ok"):

        @cloaca.task()
        def fine(context):
            return context

    assert runner.execute(name + "_ok", {}).status == "Completed"


def test_retries_follow_the_policy_and_succeed(runner, name):
    attempts = []

    with cloaca.WorkflowBuilder(name):

        @cloaca.task(retry_attempts=3, retry_backoff="linear", retry_delay_ms=20, retry_jitter=False,
                     on_success=lambda task_id, ctx: attempts.append(("ok", task_id)))
        def flaky(context):
            attempts.append(time.monotonic())
            if len(attempts) < 3:
                raise ConnectionError("database connection reset")
            context.set("attempts", len(attempts))
            return context

    result = runner.execute(name, {})
    assert result.status == "Completed", result.task_errors
    assert result.final_context.get("attempts") == 3
    assert attempts[-1] == ("ok", "flaky")
    # Linear backoff: 20 ms, then 40 ms.
    assert attempts[1] - attempts[0] >= 0.018
    assert attempts[2] - attempts[1] >= 0.038


@pytest.mark.parametrize(
    "condition, error, runs",
    [
        ("never", ConnectionError("connection reset"), 1),
        ("transient", ValueError("bad input"), 1),
        ("transient", RuntimeError("service temporarily unavailable"), 3),
        ("all", ValueError("bad input"), 3),
    ],
)
def test_retry_conditions_decide_which_errors_run_again(runner, name, condition, error, runs):
    calls = []

    with cloaca.WorkflowBuilder(name):

        @cloaca.task(retry_attempts=3, retry_backoff="exponential", retry_delay_ms=5,
                     retry_condition=condition)
        def failing(context):
            calls.append(1)
            raise error

    assert runner.execute(name, {}).status == "Failed"
    assert len(calls) == runs


def test_a_task_past_its_timeout_is_interrupted_and_the_runner_goes_on(runner, name):
    calls = []

    with cloaca.WorkflowBuilder(name):

        @cloaca.task(timeout_seconds=0.3, retry_attempts=1,
                     on_success=lambda task_id, ctx: calls.append("success"),
                     on_failure=lambda task_id, error, ctx: calls.append(error))
        def hangs(context):
            while True:  # busy: interrupted at the next instruction
                time.sleep(0.01)

    started = time.monotonic()
    result = runner.execute(name, {})
    assert result.status == "Failed"
    assert "timed out" in result.task_errors["hangs"]
    assert time.monotonic() - started < 2.5
    # The attempt was stopped in its thread: on_failure saw why, and
    # nothing of it runs later.
    deadline = time.monotonic() + 2
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert calls == ["Python task execution failed: TaskInterrupted: the task timed out after 300 ms"]

    with cloaca.WorkflowBuilder(name + "_next"):

        @cloaca.task()
        def quick(context):
            context.set("ok", True)
            return context

    assert runner.execute(name + "_next", {}).final_context.get("ok") is True


def test_a_task_returning_a_non_context_or_non_json_fails_clearly(runner, name):
    with cloaca.WorkflowBuilder(name):

        @cloaca.task(retry_attempts=1)
        def wrong_type(context):
            return {"not": "a context"}

    result = runner.execute(name, {})
    assert result.status == "Failed"
    assert "returned dict; return the Context" in result.task_errors["wrong_type"]

    with cloaca.WorkflowBuilder(name + "_set"):

        @cloaca.task(retry_attempts=1)
        def not_json(context):
            context.set("when", object())
            return context

    result = runner.execute(name + "_set", {})
    assert result.status == "Failed"
    error = result.task_errors["not_json"]
    assert "TypeError" in error and "'when'" in error


def test_bad_calls_raise_errors_that_name_the_problem(runner, name):
    with pytest.raises(ValueError, match="Workflow execution failed: no workflow named"):
        runner.execute("never_registered", {})
    with pytest.raises(cloaca.ExecutionError):
        runner.execute("never_registered", {})
    with pytest.raises(TypeError, match="'k'"):
        cloaca.Context({"k": {1, 2}})
    with pytest.raises(ValueError, match="not found in registry"):
        cloaca.WorkflowBuilder(name).add_task("ghost")
    with pytest.raises(ValueError, match="Task must be either a string task ID"):
        cloaca.WorkflowBuilder(name).add_task(42)
    with pytest.raises(ValueError, match="Dependency 0 must be either a string or a function"):
        cloaca.task(dependencies=[3])
    with pytest.raises(ValueError, match="retry_backoff must be one of"):
        cloaca.task(retry_backoff="quadratic")
    with pytest.raises(ValueError, match="cannot be empty"):
        cloaca.WorkflowBuilder(name).build()
    with pytest.raises(ValueError, match="cycle"):
        with cloaca.WorkflowBuilder(name + "_cycle"):

            @cloaca.task(dependencies=["b"])
            def a(context):
                return context

            @cloaca.task(dependencies=["a"])
            def b(context):
                return context

    with pytest.raises(cloaca.RunnerError, match="unsupported database URL"):
        cloaca.DefaultRunner("mysql://nowhere/db")
    # Names the runtime would refuse are refused where they are written,
    # so one bad definition cannot break every later runner.
    with pytest.raises(ValueError, match="invalid task id `load data`"):
        cloaca.task(id="load data")(lambda context: context)
    with pytest.raises(ValueError, match="invalid workflow name"):
        cloaca.WorkflowBuilder("my workflow")
    with pytest.raises(ValueError, match="at least 10ms"):
        cloaca.trigger(on=name, poll_interval="5ms")


def test_a_workflow_registered_again_under_its_name_replaces_it(runner, name):
    with cloaca.WorkflowBuilder(name):

        @cloaca.task(id="step")
        def first(context):
            context.set("version", 1)
            return context

    assert runner.execute(name, {}).final_context.get("version") == 1

    def second_definition():
        @cloaca.task(id=f"{name}_v2")
        def second(context):
            context.set("version", 2)
            return context

        builder = cloaca.WorkflowBuilder(name)
        builder.add_task(f"{name}_v2")
        return builder.build()

    cloaca.register_workflow_constructor(name, second_definition)
    assert runner.execute(name, {}).final_context.get("version") == 2


def test_redefining_the_same_shape_runs_the_new_code(runner, name):
    for answer in (1, 2):
        with cloaca.WorkflowBuilder(name):

            @cloaca.task(id="only")
            def only(context, answer=answer):
                context.set("answer", answer)
                return context

        assert runner.execute(name, {}).final_context.get("answer") == answer


def test_workflow_shape_queries(name):
    with cloaca.WorkflowBuilder(name, tenant="acme", package="pkg") as builder:
        builder.tag("team", "data")

        @cloaca.task()
        def root(context):
            return context

        @cloaca.task(dependencies=[root])
        def mid(context):
            return context

        @cloaca.task(dependencies=[root])
        def other(context):
            return context

        @cloaca.task(dependencies=[mid, other])
        def leaf(context):
            return context

    workflow = _registered(name)  # leaving the block registered it
    prefix = f"acme::pkg::{name}::"
    assert workflow.get_roots() == [prefix + "root"]
    assert workflow.get_leaves() == [prefix + "leaf"]
    assert workflow.get_execution_levels() == [[prefix + "root"], [prefix + "mid", prefix + "other"], [prefix + "leaf"]]
    assert workflow.topological_sort()[0] == prefix + "root"
    assert len(workflow.version) == 16 and int(workflow.version, 16) >= 0
    assert repr(workflow) == f"Workflow(name='{name}', tasks=4)"


def _registered(name):
    from cloaca._workflow import REGISTRY

    return REGISTRY.workflows[name]


def test_handles_and_async_execute(runner, name):
    ready = threading.Event()

    with cloaca.WorkflowBuilder(name):

        @cloaca.task()
        def waits(context, handle):
            assert handle.is_slot_held()
            handle.defer_until(ready.is_set, poll_interval_ms=10)
            context.set("released", True)
            return context

    threading.Timer(0.2, ready.set).start()
    result = asyncio.run(runner.execute_async(name, {}))
    assert result.final_context.get("released") is True


def test_execute_releases_the_gil_for_other_threads(runner, name):
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.005)

    with cloaca.WorkflowBuilder(name):

        @cloaca.task()
        def slow(context):
            time.sleep(0.3)
            return context

    thread = threading.Thread(target=ticker)
    thread.start()
    runner.execute(name, {})
    stop.set()
    thread.join()
    assert len(ticks) > 20


def test_trigger_less_graph_routes_inside_a_task(runner, name):
    graph_name = f"{name}_graph"
    with cloaca.ComputationGraphBuilder(graph_name, graph={
        "assess": {"routes": {"High": "alert", "Low": "note"}},
        "alert": {},
        "note": {},
    }) as graph:

        @cloaca.node
        def assess(context):
            reading = context.get("reading")
            return ("High", {"level": reading}) if reading > 30 else ("Low", reading)

        @cloaca.node
        def alert(payload):
            return {"alert": f"hot: {payload['level']}"}

        @cloaca.node
        def note(payload):
            return f"mild: {payload}"

    with cloaca.WorkflowBuilder(name):

        @cloaca.task(invokes=graph, post_invocation=lambda ctx: ctx.set("post", True))
        def measure(context):
            return context

    hot = runner.execute(name, {"reading": 35}).final_context
    assert hot.get("alert") == {"alert": "hot: 35"} and "note" not in hot and hot.get("post") is True
    mild = runner.execute(name, {"reading": 12}).final_context
    assert mild.get("note") == "mild: 12" and "alert" not in mild
    assert graph.execute({"reading": 40}) == {"alert": {"alert": "hot: 40"}}


def test_invokes_refuses_what_cannot_be_invoked():
    with pytest.raises(ValueError, match="not registered"):
        cloaca.task(invokes=type("G", (), {"NAME": "missing_graph"})())
    with pytest.raises(ValueError, match="post_invocation"):
        cloaca.task(post_invocation=lambda ctx: ctx)
    with pytest.raises(ValueError, match="react="):
        cloaca.ComputationGraphBuilder("g", graph={"a": {}}, react=lambda: 0)


KILLED_SCRIPT = """
import os, sys, time, cloaca
url, marks = sys.argv[1], sys.argv[2]

with cloaca.WorkflowBuilder("recover"):
    @cloaca.task()
    def first(context):
        with open(marks, "a") as f: f.write("first\\n")
        return context

    @cloaca.task(dependencies=["first"])
    def second(context):
        with open(marks, "a") as f: f.write("second\\n")
        if os.environ.get("HANG"):
            time.sleep(60)
        context.set("done", True)
        return context

runner = cloaca.DefaultRunner(url)
if os.environ.get("HANG"):
    print(runner.start("recover", {}), flush=True)
    time.sleep(60)
else:
    print(runner.wait(sys.argv[3], timeout=60).status, flush=True)
    runner.shutdown()
"""


def test_kill_9_mid_workflow_then_a_new_runner_finishes_it(database_url, tmp_path):
    script = tmp_path / "recover.py"
    script.write_text(KILLED_SCRIPT)
    marks = tmp_path / "marks"
    victim = subprocess.Popen(
        [sys.executable, str(script), database_url, str(marks)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "HANG": "1"},
    )
    execution_id = victim.stdout.readline().strip()
    deadline = time.monotonic() + 20
    while "second" not in (marks.read_text() if marks.exists() else ""):
        assert time.monotonic() < deadline, "the second task never started"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    rescued = subprocess.run(
        [sys.executable, str(script), database_url, str(marks), execution_id],
        capture_output=True, text=True, timeout=90,
    )
    assert rescued.returncode == 0, rescued.stderr
    assert rescued.stdout.strip() == "Completed"
    # The completed task did not run again; the interrupted one did.
    assert marks.read_text().splitlines() == ["first", "second", "second"]


INTERRUPTED_SCRIPT = """
import signal, sys, time, cloaca
# A child of a backgrounded job inherits an ignored SIGINT.
signal.signal(signal.SIGINT, signal.default_int_handler)

with cloaca.WorkflowBuilder("slow"):
    @cloaca.task()
    def nap(context):
        print("napping", flush=True)
        time.sleep(2)
        return context

with cloaca.WorkflowBuilder("quick"):
    @cloaca.task()
    def brisk(context):
        return context

with cloaca.DefaultRunner(sys.argv[1]) as runner:
    started = time.monotonic()
    try:
        runner.execute("slow", {})
        print("not interrupted", flush=True)
    except KeyboardInterrupt:
        print(f"interrupted after {time.monotonic() - started:.2f} s", flush=True)
    print(runner.execute("quick", {}).status, flush=True)
"""


def test_ctrl_c_interrupts_execute_and_the_runner_stays_usable(database_url, tmp_path):
    script = tmp_path / "interrupted.py"
    script.write_text(INTERRUPTED_SCRIPT)
    child = subprocess.Popen([sys.executable, str(script), database_url], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "napping"
    time.sleep(0.2)
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=30)
    lines = out.splitlines()
    assert lines[0].startswith("interrupted after "), out
    assert float(lines[0].split()[2]) < 1.5
    assert lines[1] == "Completed"


@pytest.mark.parametrize("url", [":memory:", "sqlite://:memory:"])
def test_memory_urls_are_scratch_databases(url, name):
    with cloaca.WorkflowBuilder(name):

        @cloaca.task()
        def step(context):
            context.set("ran", True)
            return context

    with cloaca.DefaultRunner(url) as runner:
        assert runner.backend == "sqlite"
        assert cloaca.get_backend() == "sqlite"
        assert runner.execute(name, {}).final_context.get("ran") is True
    with cloaca.DefaultRunner(url) as fresh:
        with pytest.raises(cloaca.ExecutionError, match="no execution"):
            fresh.wait("00000000-0000-4000-8000-000000000000", timeout=1)
