"""Computation graphs through clients that are not ours: the sample graph
package, signed and uploaded with the published SDK, is fed over the
accumulator socket by the `websockets` package, fires as declared, starts
its subscribed workflow once per firing, and is driven over the reactor
socket; the SDK's graph-health calls parse every route."""

import asyncio
import json
import os
import subprocess
import time
import uuid

import httpx
import pytest
import websockets

from cloacina_client import Client, CloacinaApiError

from conftest import CLOACINACTL, REPO, server_database_url

SERVER = os.environ["CLOACINA_SERVER_URL"]
API_KEY = os.environ["CLOACINA_API_KEY"]
WS = SERVER.replace("http://", "ws://")
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def run(*args: str, cwd) -> None:
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", str(REPO / "sample-packages" / "target"))
    subprocess.run([str(CLOACINACTL), *args], check=True, capture_output=True, cwd=cwd, env=env)


@pytest.fixture(scope="session")
def graph_package(tmp_path_factory) -> bytes:
    """The `graph` sample, packed and signed by a key the server trusts."""
    work = tmp_path_factory.mktemp("graph")
    run("key", "generate", "author", "--out", "keys", cwd=work)
    run("pack", str(REPO / "sample-packages" / "graph"), "--sign", "keys/author.key", "-o", "graph.cloacina", cwd=work)
    run("trust", "add", "keys/author.pub", "--database-url", server_database_url(), cwd=work)
    return (work / "graph.cloacina").read_bytes()


@pytest.fixture(scope="session")
def admin() -> Client:
    return Client(SERVER, api_key=API_KEY)


@pytest.fixture()
def tenant(admin: Client):
    name = f"graphs_{uuid.uuid4().hex[:10]}"
    admin.create_tenant(name, description="graph suite")
    yield name
    try:
        admin.remove_tenant(name)
    except CloacinaApiError:
        pass


def live_graph(admin: Client, name: str, tenant: str):
    deadline = time.time() + 60
    while True:
        graphs = [g for g in admin.list_graphs().items if g.name == name and g["tenant_id"] == tenant]
        if graphs and graphs[0].health == {"state": "live"}:
            return graphs[0]
        assert time.time() < deadline, f"graph {name} never went live: {graphs}"
        time.sleep(0.05)


def firings(tenant: str, graph: str) -> list[dict]:
    response = httpx.get(
        f"{SERVER}/v1/health/reactors/{graph}/fires",
        params={"tenant": tenant, "limit": 1000},
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def push(tenant: str, accumulator: str, events: list) -> None:
    """Sends `events` in acknowledged mode and waits for the ack of all."""
    url = f"{WS}/v1/ws/accumulator/{accumulator}?ack=1&tenant={tenant}"
    async with websockets.connect(url, additional_headers=AUTH) as socket:
        for event in events:
            await socket.send(json.dumps(event))
        while True:
            frame = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
            assert frame["type"] == "ack", frame
            if frame["seq"] == len(events):
                return


async def command(socket, command: dict) -> dict:
    await socket.send(json.dumps(command))
    return json.loads(await asyncio.wait_for(socket.recv(), timeout=10))


def wait_for(check, what: str, timeout: float = 30):
    deadline = time.time() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


async def test_the_sample_graph_fires_as_declared_and_starts_its_workflow_once_per_firing(
    admin: Client, tenant: str, graph_package: bytes
) -> None:
    admin.upload_workflow(graph_package, tenant=tenant)
    climate = live_graph(admin, "climate", tenant)
    assert climate.accumulators == ["temperature", "humidity", "history"]
    assert climate.paused is False
    assert climate["reaction_mode"] == "when_all" and climate["subscriptions"] == ["notify"]
    edges = climate["topology"]["edges"]
    assert {"from": "assess", "to": "raise_alert", "label": "hot"} in edges
    graph = admin.get_graph("climate")
    assert graph.name == "climate"
    statuses = {a.name: a.status for a in admin.list_accumulators().items if a["tenant_id"] == tenant}
    assert statuses["temperature"] == "socket_only" and statuses["humidity"] == "socket_only"
    # The 0.8 client returns this list as plain JSON.
    reactors = [r for r in admin.list_reactors()["items"] if r["name"] == "climate"]
    assert reactors and reactors[0]["bound_graphs"] == ["climate"]
    assert reactors[0]["health"] == {"state": "live"}

    # when_all: a temperature alone does not fire; a full humidity batch (3) does.
    await push(tenant, "temperature", [{"celsius": 31.5}])
    await push(tenant, "humidity", [{"percent": 40}, {"percent": 50}])
    await asyncio.sleep(0.2)
    assert firings(tenant, "climate") == []
    await push(tenant, "humidity", [{"percent": 45}])
    first = wait_for(lambda: firings(tenant, "climate"), "the first firing")
    assert len(first) == 1 and first[0]["ok"], first
    assert first[0]["outputs"]["raise_alert"] == {"alert": "too hot: 31.5 C at 45% humidity"}
    assert "note_mild" not in first[0]["outputs"]

    # A mild reading: the other branch, and the window has one entry now.
    await push(tenant, "temperature", [{"celsius": 12}])
    await push(tenant, "humidity", [{"percent": 10}, {"percent": 20}, {"percent": 30}])
    both = wait_for(lambda: (f := firings(tenant, "climate")) and len(f) == 2 and f, "the second firing")
    assert both[0]["outputs"]["note_mild"] == {"note": "mild: 12 C"}
    assert both[0]["outputs"]["assess"]["readings"] == 1

    # One `notify` execution per firing.
    def notified():
        listed = admin.list_executions(tenant=tenant, workflow="notify", status="completed")
        return listed.total == 2 and listed

    wait_for(notified, "two notify executions")
    time.sleep(0.5)
    assert admin.list_executions(tenant=tenant, workflow="notify").total == 2

    # The reactor socket: the 0.8 commands, one reply each.
    ticket = admin.create_ws_ticket().ticket
    async with websockets.connect(f"{WS}/v1/ws/reactor/climate?token={ticket}&tenant={tenant}") as socket:
        state = await command(socket, {"command": "get_state"})
        assert state["type"] == "state"
        assert json.loads(state["cache"]["temperature"]) == {"celsius": 12}
        assert await command(socket, {"command": "pause"}) == {"type": "paused"}
        refused = await command(socket, {"command": "force_fire"})
        assert refused["type"] == "error" and "paused" in refused["message"]
        assert await command(socket, {"command": "resume"}) == {"type": "resumed"}
        assert await command(socket, {"command": "force_fire"}) == {"type": "fired"}
        fired_with = await command(
            socket,
            {
                "command": "fire_with",
                "cache": {
                    "temperature": list(b'{"celsius": 40}'),
                    "humidity": list(b'[{"percent": 90}]'),
                },
            },
        )
        assert fired_with == {"type": "fired"}
        bad = await command(socket, {"command": "explode"})
        assert bad["type"] == "error" and bad["message"].startswith("invalid command")
    log = firings(tenant, "climate")
    assert log[0]["manual"] and log[0]["outputs"]["raise_alert"] == {"alert": "too hot: 40 C at 90% humidity"}
    assert admin.get_graph("climate")["fires"] == 4


async def test_a_burst_into_a_sequential_graph_fires_once_per_event_in_order(
    admin: Client, tenant: str, graph_package: bytes
) -> None:
    admin.upload_workflow(graph_package, tenant=tenant)
    live_graph(admin, "counter", tenant)
    events = [{"n": n} for n in range(1, 1001)]
    await push(tenant, "ticks", events)
    done = wait_for(lambda: (f := firings(tenant, "counter")) and len(f) == len(events) and f, "every firing", 60)
    assert [f["outputs"]["count"]["n"] for f in reversed(done)] == list(range(1, len(events) + 1))


async def test_bad_input_is_refused_clearly(admin: Client, tenant: str, graph_package: bytes) -> None:
    admin.upload_workflow(graph_package, tenant=tenant)
    live_graph(admin, "climate", tenant)
    # Unknown names: 4404 on the sockets, 404 over REST.
    async with websockets.connect(f"{WS}/v1/ws/accumulator/nope?tenant={tenant}", additional_headers=AUTH) as socket:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), timeout=10)
        assert closed.value.rcvd.code == 4404
    with pytest.raises(CloacinaApiError) as missing:
        admin.get_graph("no_such_graph")
    assert missing.value.status == 404 and missing.value.code == "graph_not_found"
    # A read key may not push.
    reader = httpx.post(
        f"{SERVER}/v1/tenants/{tenant}/keys",
        json={"name": "reader", "role": "read"},
        headers=AUTH,
    ).json()["key"]
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(f"{WS}/v1/ws/accumulator/temperature", additional_headers={"Authorization": f"Bearer {reader}"}):
            pass
    assert refused.value.response.status_code == 403
    # Invalid JSON is rejected by number; the socket goes on.
    url = f"{WS}/v1/ws/accumulator/temperature?ack=1&tenant={tenant}"
    async with websockets.connect(url, additional_headers=AUTH) as socket:
        await socket.send("{nope")
        await socket.send(json.dumps({"celsius": 20}))
        rejected = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
        assert rejected["type"] == "rejected" and rejected["seq"] == 1 and rejected["code"] == "invalid_json"
        # Acks are cumulative over settled frames: the last one covers both.
        while (ack := json.loads(await asyncio.wait_for(socket.recv(), timeout=10)))["seq"] < 2:
            assert ack["type"] == "ack"
        assert ack == {"type": "ack", "seq": 2}
