"""Cron schedules and poll triggers on an embedded runner."""

import time
import uuid

import pytest

import cloaca
from conftest import wait_for


def test_cron_schedules_crud_and_a_schedule_that_really_fires(runner, name):
    with cloaca.WorkflowBuilder(name):

        @cloaca.task()
        def tick(context):
            context.set("ticked", True)
            return context

    schedule_id = runner.register_cron_workflow(name, "* * * * * *", "UTC")
    assert uuid.UUID(schedule_id)
    stored = runner.get_cron_schedule(schedule_id)
    assert stored["workflow_name"] == name and stored["enabled"] is True
    assert stored["cron_expression"] == "* * * * * *" and stored["timezone"] == "UTC"
    assert stored["next_run_at"] is not None
    assert [s["id"] for s in runner.list_cron_schedules(False, 100, 0)] == [schedule_id]

    history = wait_for(lambda: runner.get_cron_execution_history(schedule_id, 10, 0), 10, "a cron firing")
    first = runner.wait(history[-1]["execution_id"], timeout=10)
    assert first.status == "Completed" and first.final_context.get("ticked") is True
    assert runner.get_cron_schedule(schedule_id)["last_run_at"] is not None

    stats = runner.get_cron_execution_stats("2020-01-01T00:00:00Z")
    assert stats["total_executions"] >= 1 and stats["successful_executions"] >= 1
    assert 0.0 <= stats["success_rate"] <= 100.0 and stats["lost_executions"] == 0

    runner.set_cron_schedule_enabled(schedule_id, False)
    assert runner.list_cron_schedules(True, 100, 0) == []
    fired = len(runner.get_cron_execution_history(schedule_id, 100, 0))
    time.sleep(2.2)
    assert len(runner.get_cron_execution_history(schedule_id, 100, 0)) <= fired + 1

    runner.update_cron_schedule(schedule_id, "0 0 * * *", "Europe/Paris")
    assert runner.get_cron_schedule(schedule_id)["timezone"] == "Europe/Paris"
    runner.delete_cron_schedule(schedule_id)
    with pytest.raises(ValueError, match="Failed to get cron schedule: no cron schedule"):
        runner.get_cron_schedule(schedule_id)


def test_cron_refusals(runner, name, database_url):
    with pytest.raises(ValueError, match="Failed to register cron workflow: .*invalid expression"):
        runner.register_cron_workflow(name, "every tuesday", "UTC")
    with pytest.raises(ValueError, match="unknown time zone"):
        runner.register_cron_workflow(name, "* * * * *", "Mars/Olympus")
    with pytest.raises(ValueError, match="Invalid schedule ID"):
        runner.get_cron_schedule("not-a-uuid")
    with pytest.raises(ValueError, match="Failed to update cron schedule"):
        runner.update_cron_schedule(str(uuid.uuid4()), "* * * * *", "UTC")
    with pytest.raises(cloaca.ScheduleError, match="Invalid datetime format"):
        runner.get_cron_execution_stats("yesterday")
    config = cloaca.DefaultRunnerConfig(enable_cron_scheduling=False)
    runner.shutdown()
    with cloaca.DefaultRunner.with_config(database_url, config) as no_cron:
        with pytest.raises(ValueError, match="cron scheduling is disabled"):
            no_cron.list_cron_schedules(False, 100, 0)


def test_a_stored_schedule_fires_for_the_next_runner(database_url, name):
    with cloaca.WorkflowBuilder(name):

        @cloaca.task()
        def beat(context):
            return context

    with cloaca.DefaultRunner(database_url) as first:
        schedule_id = first.register_cron_workflow(name, "* * * * * *", "UTC")
    with cloaca.DefaultRunner(database_url) as second:
        wait_for(lambda: second.get_cron_execution_history(schedule_id, 10, 0), 10, "a firing by the second runner")


def test_a_change_made_through_one_runner_reaches_the_others(database_url, name):
    with cloaca.WorkflowBuilder(name):

        @cloaca.task()
        def beat(context):
            return context

    with cloaca.DefaultRunner(database_url) as first, cloaca.DefaultRunner(database_url) as second:
        schedule_id = first.register_cron_workflow(name, "* * * * * *", "UTC")
        wait_for(lambda: first.get_cron_execution_history(schedule_id, 10, 0), 10, "a firing")
        first.set_cron_schedule_enabled(schedule_id, False)
        time.sleep(1.5)  # the second runner reads the table every second
        fired = len(first.get_cron_execution_history(schedule_id, 100, 0))
        time.sleep(2.5)
        # Neither runner fires it any more (one firing may be in flight).
        assert len(second.get_cron_execution_history(schedule_id, 100, 0)) <= fired + 1


def test_a_poll_trigger_fires_its_workflow_once_per_key(runner, name):
    files = []

    with cloaca.WorkflowBuilder(name):

        @cloaca.task()
        def ingest(context):
            context.set("ingested", context.get("file"))
            return context

    @cloaca.trigger(name=f"{name}_files", on=name, poll_interval="50ms")
    def new_file():
        return cloaca.TriggerResult.fire(cloaca.Context({"file": files[-1]})) if files else False

    trigger_name = f"{name}_files"
    assert runner.get_trigger_schedule(trigger_name)["poll_interval_ms"] == 50
    time.sleep(0.3)
    assert runner.get_trigger_execution_history(trigger_name) == []
    files.append("a.csv")
    started = wait_for(lambda: runner.get_trigger_execution_history(trigger_name), 5, "a trigger firing")
    assert runner.wait(started[0]["execution_id"], timeout=5).final_context.get("ingested") == "a.csv"
    time.sleep(0.4)  # polled again and again: the same key does not fire twice
    assert len(runner.get_trigger_execution_history(trigger_name)) == 1
    files.append("b.csv")
    wait_for(lambda: len(runner.get_trigger_execution_history(trigger_name)) == 2, 5, "a second key firing")
    assert runner.get_trigger_schedule(trigger_name)["last_poll_at"] is not None

    runner.set_trigger_enabled(trigger_name, False)
    assert runner.list_trigger_schedules(enabled_only=True) == [] or all(
        t["trigger_name"] != trigger_name for t in runner.list_trigger_schedules(enabled_only=True)
    )
    files.append("c.csv")
    time.sleep(0.4)
    assert len(runner.get_trigger_execution_history(trigger_name)) == 2
    with pytest.raises(ValueError, match="no trigger named"):
        runner.set_trigger_enabled("nope", True)
    cloaca._triggers.unregister_trigger(trigger_name)  # later runners do not poll it


def test_a_trigger_key_says_what_counts_as_new(runner, name, capfd):
    ticks = []

    with cloaca.WorkflowBuilder(name):

        @cloaca.task()
        def count(context):
            return context

    @cloaca.trigger(name=f"{name}_ticks", on=name, poll_interval="20ms")
    def every_tick():
        ticks.append(1)
        return cloaca.TriggerResult.fire(key=f"tick-{len(ticks) // 5}")  # a new key every 5 polls

    @cloaca.trigger(name=f"{name}_broken", on=name, poll_interval="20ms")
    def broken():
        raise RuntimeError("the upstream API is down")

    try:
        wait_for(lambda: len(runner.get_trigger_execution_history(f"{name}_ticks")) >= 3, 10, "three keys fired")
        assert cloaca.TriggerResult.fire(key="k").key == "k"
        time.sleep(0.2)
        # A poll that raises is reported (on stderr, through the runtime's log).
        assert "the upstream API is down" in capfd.readouterr().err
    finally:
        for trigger in (f"{name}_ticks", f"{name}_broken"):
            runner.set_trigger_enabled(trigger, False)
            cloaca._triggers.unregister_trigger(trigger)


def test_a_cron_trigger_fires_its_workflow(runner, name):
    with cloaca.WorkflowBuilder(name):

        @cloaca.task()
        def tick(context):
            return context

    @cloaca.trigger(name=f"{name}_cron", on=name, cron="* * * * * *")
    def every_second():
        return True

    try:
        wait_for(lambda: runner._native.started_by(f"cron:trigger-{name}_cron", 10, 0), 10, "a cron trigger firing")
    finally:
        runner._native.remove_trigger(f"{name}_cron")
        cloaca._triggers.unregister_trigger(f"{name}_cron")
