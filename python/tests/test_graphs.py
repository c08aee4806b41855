"""Reactor-triggered computation graphs declared in Python, run on the
host's graph runtime by an embedded runner."""

import time

import pytest

import cloaca
from conftest import wait_for


def _named(name, function):
    # Accumulators are named after their functions, process-wide: each
    # test's get their own names.
    function.__name__ = name
    return function


def _declare(name):
    """A graph fired when both a price and a volume have come in; it
    routes to an alert or a note; its price accumulator scales events."""
    price, volume = f"{name}_price", f"{name}_volume"
    cloaca.passthrough_accumulator(
        _named(price, lambda event: None if event.get("ignore") else event["cents"] / 100)
    )
    cloaca.batch_accumulator(flush_interval="50ms", max_buffer_size=3)(_named(volume, lambda event: event))

    @cloaca.reactor(name=f"{name}_reactor", accumulators=[price, volume], mode="when_all")
    class Reactor:
        pass

    with cloaca.ComputationGraphBuilder(name, graph={
        "assess": {"inputs": [price, volume], "routes": {"High": "alert", "Low": "note"}},
        "alert": {},
        "note": {},
    }, reactor=Reactor) as graph:

        @cloaca.node
        def assess(price, volumes):
            notional = price * sum(volumes)
            return ("High", {"notional": notional}) if notional > 100 else ("Low", notional)

        @cloaca.node
        def alert(payload):
            return {"alert": payload["notional"]}

        @cloaca.node
        def note(payload):
            return {"note": payload}

    return graph


def test_a_reactor_graph_fires_routes_and_starts_its_subscribers(runner, name):
    graph = _declare(name)
    with cloaca.WorkflowBuilder(f"{name}_notify"):

        @cloaca.task()
        def notify(context):
            context.set("notified", True)
            return context

    assert runner.graph_status(name)["health"]["state"] in ("starting", "live")
    subscription = runner.subscribe_workflow_to_reactor(f"{name}_reactor", f"{name}_notify")
    assert [s["id"] for s in runner.list_reactor_subscriptions()] == [subscription]

    price, volume = f"{name}_price", f"{name}_volume"
    assert runner.push_event(price, {"cents": 2500}) == 1
    assert runner.push_event(price, {"ignore": True}) == 0  # dropped by its function
    for units in (2, 3):
        runner.push_event(volume, units)
    firings = wait_for(lambda: runner.graph_firings(name), 10, "a firing")
    fired = firings[0]
    assert fired["ok"], fired
    assert fired["inputs"] == {price: 25.0, volume: [2, 3]}
    assert fired["outputs"]["alert"] == {"alert": 125.0}
    assert "note" not in fired["outputs"]
    # The subscribed workflow ran once for the firing.
    started = wait_for(lambda: _executions(runner, name), 10, "the subscribed workflow")
    assert len(started) == 1
    assert runner.wait(started[0]["execution_id"], timeout=10).final_context.get("notified") is True

    runner.pause_graph(name)
    assert runner.graph_status(name)["paused"] is True
    runner.resume_graph(name)
    forced = runner.fire_graph(name)
    assert forced["manual"] is True and forced["outputs"]["alert"] == {"alert": 125.0}
    assert runner.graph_state(name)[price] == 25.0

    assert runner.unsubscribe_workflow_from_reactor(f"{name}_reactor", f"{name}_notify") is True
    assert runner.list_reactor_subscriptions() == []


def _executions(runner, name):
    # Subscribed workflows are started with the graph's origin; find them
    # through the runtime's record of started executions.
    return runner._native.started_by(f"graph:{name}", 10, 0)


def _chain(name):
    """level -> double -> label: plain values passed along with next."""
    level = f"{name}_level"
    cloaca.passthrough_accumulator(_named(level, lambda event: event))

    @cloaca.reactor(name=f"{name}_chain", accumulators=[level])
    class Reactor:
        pass

    with cloaca.ComputationGraphBuilder(name, graph={
        "double": {"next": "label"},
        "label": {},
    }, reactor=Reactor):

        @cloaca.node
        def double(value):
            return None if value < 0 else value * 2  # None: nothing downstream

        @cloaca.node
        def label(doubled):
            return f"level {doubled}"

    return level


def test_plain_values_flow_along_next_and_none_stops_them(runner, name):
    level = _chain(name)
    runner.push_event(level, 21)
    fired = wait_for(lambda: runner.graph_firings(name), 10, "a firing")[0]
    assert fired["ok"], fired
    assert fired["outputs"] == {"double": 42, "label": "level 42"}
    runner.push_event(level, -1)
    latest = wait_for(lambda: [f for f in runner.graph_firings(name) if f["inputs"][level] == -1], 10, "a second firing")[0]
    assert latest["outputs"] == {"double": None}


def test_runners_on_one_database_share_one_graph_runtime(database_url, name):
    level = _chain(name)
    first = cloaca.DefaultRunner(database_url)
    second = cloaca.DefaultRunner(database_url)
    try:
        assert second.push_event(level, 1) == 1  # handed to the runner that runs the graph
        wait_for(lambda: second.graph_firings(name), 10, "a firing through the second runner")
        first.shutdown()  # the second takes the graph over
        second.push_event(level, 2)
        wait_for(lambda: [f for f in second.graph_firings(name) if f["inputs"][level] == 2], 10,
                  "a firing after the takeover")
    finally:
        first.shutdown()
        second.shutdown()


def test_graph_refusals_say_what_is_wrong(runner, name):
    with pytest.raises(cloaca.GraphError, match="no accumulator named"):
        runner.push_event("nothing_takes_this", {"a": 1})
    cloaca.polling_accumulator(interval="1s")(_named(f"{name}_polled", lambda: 1))
    with pytest.raises(cloaca.GraphError, match="polling accumulator; it takes no events"):
        runner.push_event(f"{name}_polled", 1)

    # What the runtime would refuse is refused where it is declared, and
    # not kept: later runners start.
    cloaca.passthrough_accumulator(_named(f"{name}_ok", lambda event: event))

    @cloaca.reactor(name=f"{name}_bad", accumulators=[f"{name}_ok"])
    class Bad:
        pass

    with pytest.raises(ValueError, match="is not a valid name"):
        with cloaca.ComputationGraphBuilder(f"{name} with spaces", graph={"n": {}}, reactor=Bad):

            @cloaca.node
            def n(value):
                return value

    with cloaca.DefaultRunner(":memory:") as later:
        assert later.backend == "sqlite"
    with pytest.raises(ValueError, match="invalid expression"):
        cloaca.trigger(on=name, cron="every day")
    graph = _declare(f"{name}_g")
    with pytest.raises(ValueError, match="is not registered"):
        runner.subscribe_workflow_to_reactor(f"{name}_g_reactor", "no_such_workflow")
    assert graph.NAME == f"{name}_g"

    cloaca.state_accumulator(capacity=3)(_named(f"{name}_history", lambda event: event))

    @cloaca.reactor(name=f"{name}_r", accumulators=[f"{name}_history"])
    class Windowed:
        pass

    with pytest.raises(ValueError, match="needs the node that feeds it"):
        with cloaca.ComputationGraphBuilder(name, graph={"n": {}}, reactor=Windowed):

            @cloaca.node
            def n(values):
                return values

    with pytest.raises(ValueError, match="subscription filters"):
        runner.subscribe_workflow_to_reactor("whatever", "wf", when="x > 1")
    with pytest.raises(ValueError, match="no computation graph is fired by a reactor named"):
        runner.subscribe_workflow_to_reactor("no_such_reactor", "wf")
