"""Our compatibility and bad-input suite: the published SDK (and raw HTTP
where the SDK has no method) against the real server started by conftest.

A real package (the ETL sample, packed by `cloacinactl pack`) is uploaded,
loaded, executed and followed over the delivery socket; roles, tenant
isolation, tenant removal, at-least-once redelivery, the ticket store's
bound and the documented bad inputs are checked."""

import asyncio
import base64
import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
import websockets

from cloacina_client import AsyncClient, Client, CloacinaApiError

from conftest import CLOACINACTL, REPO

SERVER = os.environ["CLOACINA_SERVER_URL"]
API_KEY = os.environ["CLOACINA_API_KEY"]
WS = SERVER.replace("http://", "ws://")


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def etl_package(tmp_path_factory) -> bytes:
    out = tmp_path_factory.mktemp("pkg") / "etl.cloacina"
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", str(REPO / "sample-packages" / "target"))
    subprocess.run(
        [str(CLOACINACTL), "pack", str(REPO / "sample-packages" / "etl"), "-o", str(out)],
        check=True,
        capture_output=True,
        env=env,
    )
    return out.read_bytes()


@pytest.fixture(scope="session")
def admin() -> Client:
    return Client(SERVER, api_key=API_KEY)


@pytest.fixture()
def tenant(admin: Client):
    name = unique("compat")
    admin.create_tenant(name, description="compat suite")
    yield name
    try:
        admin.remove_tenant(name)
    except CloacinaApiError:
        pass


def wait_loaded(client: Client, workflow: str, tenant: str) -> dict:
    deadline = time.time() + 60
    while True:
        detail = client.get_workflow(workflow, tenant=tenant)
        status = detail.build_status
        if status == "loaded":
            return detail
        assert status != "failed", f"the package failed to load: {detail}"
        assert time.time() < deadline, f"never loaded: {detail}"
        time.sleep(0.05)


# ---- a real package, end to end ----


async def test_upload_execute_and_follow_a_real_package(admin: Client, tenant: str, etl_package: bytes) -> None:
    uploaded = admin.upload_workflow(etl_package, tenant=tenant)
    assert uploaded.tenant_id == tenant and uploaded.package_id
    # The same bytes again: accepted, nothing new.
    admin.upload_workflow(etl_package, tenant=tenant)
    detail = wait_loaded(admin, "etl", tenant)
    assert detail.package_name == "etl" and detail.tasks == ["extract", "transform", "load"]
    # The 0.8 model has no task_graph field: it arrives as an extra property.
    graph = {node["id"]: node["dependencies"] for node in detail.additional_properties["task_graph"]}
    assert graph == {"extract": [], "transform": ["extract"], "load": ["transform"]}
    # What the console shows, also as extra properties: each task's policy,
    # and what the package version is made of and where it came from.
    policy = detail.additional_properties["task_graph"][0]
    assert policy["max_attempts"] >= 1 and policy["backoff"] in ("fixed", "linear", "exponential")
    facts = detail.additional_properties["package"]
    assert facts["size_bytes"] == len(etl_package) and facts["source"] == "upload"
    if facts["signer_key_id"]:
        assert facts["signer_name"], f"a trusted signer is named: {facts}"
    assert facts["artifacts"] and all(a == "wasm" or a.startswith("native:") for a in facts["artifacts"])
    listed = admin.list_workflows(tenant=tenant)
    assert [w["workflow_name"] for w in listed.to_dict()["items"]] == ["etl"] and listed.total == 1

    started = admin.execute_workflow("etl", {"input": [1, 2, 3]}, tenant=tenant)
    assert started.status == "scheduled" and started.workflow_name == "etl"
    execution = started.execution_id

    aclient = AsyncClient(SERVER, api_key=API_KEY)
    streamed = []

    async def follow() -> None:
        async for event in aclient.follow_execution_events(execution, reconnect=False):
            streamed.append(event)
            if event["event_type"] in ("workflow_completed", "workflow_failed"):
                return

    await asyncio.wait_for(follow(), timeout=30)
    assert streamed[-1]["event_type"] == "workflow_completed"
    assert [e["sequence_num"] for e in streamed] == list(range(1, len(streamed) + 1))
    assert {e["execution_id"] for e in streamed} == {execution}
    assert {e["task_name"] for e in streamed if e["event_type"] == "task_completed"} == {
        "extract",
        "transform",
        "load",
    }

    finished = admin.get_execution(execution, tenant=tenant)
    assert finished.status == "Completed"
    assert finished.additional_properties["final_context"]["total"] == 12
    assert finished.additional_properties["input_context"] == {"input": [1, 2, 3]}
    events = admin.get_execution_events(execution, tenant=tenant)
    assert [e.sequence_num for e in events.events] == [e["sequence_num"] for e in streamed]
    tasks = admin.get_execution_tasks(tenant, execution)
    # The 0.8 client returns this one as plain JSON.
    assert [(t["task_name"], t["status"]) for t in tasks["tasks"]] == [
        ("extract", "completed"),
        ("transform", "completed"),
        ("load", "completed"),
    ]
    ids = [e.id for e in admin.iterate_executions(tenant=tenant, page_size=1)]
    assert ids == [execution]
    assert admin.list_executions(tenant=tenant, workflow="etl", status="completed").total == 1
    assert admin.list_executions(tenant=tenant, status="Failed").total == 0

    # Delete the version: idempotent, and the workflow is gone.
    assert admin.delete_workflow("etl", "0.1.0", tenant=tenant).status == "deleted"
    assert admin.delete_workflow("etl", "0.1.0", tenant=tenant).status == "deleted"
    with pytest.raises(CloacinaApiError) as error:
        admin.get_workflow("etl", tenant=tenant)
    assert error.value.status == 404
    deadline = time.time() + 30
    while True:
        try:
            admin.execute_workflow("etl", {}, tenant=tenant)
        except CloacinaApiError as refused:
            assert refused.code == "execution_failed"
            break
        assert time.time() < deadline, "the deleted version still runs"
        time.sleep(0.05)


# ---- the delivery socket ----


async def pushes(url: str, count: int, ack: bool) -> list[dict]:
    received = []
    async with websockets.connect(url) as socket:
        await socket.send(json.dumps({"type": "hello", "protocol_version": 1, "since_id": None}))
        welcome = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
        assert welcome["type"] == "welcome"
        while len(received) < count:
            frame = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
            if frame["type"] != "push":
                continue
            received.append(frame)
            if ack:
                await socket.send(json.dumps({"type": "ack", "protocol_version": 1, "id": frame["id"]}))
        if ack:
            # Acks are processed in order before the socket closes.
            await asyncio.sleep(0.2)
    return received


async def test_unacked_pushes_come_again_and_acked_ones_do_not(admin: Client, tenant: str, etl_package: bytes) -> None:
    admin.upload_workflow(etl_package, tenant=tenant)
    wait_loaded(admin, "etl", tenant)
    execution = admin.execute_workflow("etl", {"input": [5]}, tenant=tenant).execution_id
    deadline = time.time() + 30
    while admin.get_execution(execution, tenant=tenant).status == "Running":
        assert time.time() < deadline
        await asyncio.sleep(0.05)
    total = len(admin.get_execution_events(execution, tenant=tenant).events)
    url = f"{WS}/v1/ws/delivery/exec_events%3A{execution}"
    headers = {"Authorization": f"Bearer {API_KEY}"}

    def connect_url() -> str:
        return f"{url}?token={admin.create_ws_ticket().ticket}"

    first = await pushes(connect_url(), total, ack=False)
    again = await pushes(connect_url(), total, ack=True)
    assert [p["id"] for p in first] == [p["id"] for p in again] == list(range(1, total + 1))
    payload = json.loads(base64.b64decode(first[0]["payload_b64"]))
    assert payload["event_type"] == "workflow_started" and payload["execution_id"] == execution
    assert first[0]["tenant_id"] == tenant and first[0]["recipient"] == f"exec_events:{execution}"
    # Everything acked: the next connection is welcomed and stays idle.
    async with websockets.connect(connect_url()) as socket:
        await socket.send(json.dumps({"type": "hello", "protocol_version": 1, "since_id": None}))
        assert json.loads(await asyncio.wait_for(socket.recv(), timeout=10))["type"] == "welcome"
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(socket.recv(), timeout=1.0)
    # A ticket is single use.
    ticket = admin.create_ws_ticket().ticket
    async with websockets.connect(f"{url}?token={ticket}"):
        pass
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(f"{url}?token={ticket}"):
            pass
    assert refused.value.response.status_code == 401
    del headers


def test_tickets_are_bounded_per_key_and_say_when_to_retry() -> None:
    reader = Client(SERVER, api_key=API_KEY)
    key = reader.create_key(unique("tickets"), role="read")
    client = httpx.Client(base_url=SERVER, headers={"Authorization": f"Bearer {key.key}"})
    statuses = [client.post("/v1/auth/ws-ticket").status_code for _ in range(1100)]
    full = client.post("/v1/auth/ws-ticket")
    assert 429 in statuses and full.status_code == 429
    assert int(full.headers["retry-after"]) >= 1
    assert full.json()["code"] == "too_many_tickets"
    # One key's quota (16 unused) leaves the store to everyone else.
    assert statuses.index(429) == 16
    assert reader.create_ws_ticket().ticket
    reader.revoke_key(key.id)


# ---- roles and tenants ----


def test_roles_are_enforced(admin: Client, tenant: str) -> None:
    read = admin.create_tenant_key(unique("reader"), role="read", tenant=tenant)
    write = admin.create_tenant_key(unique("writer"), role="write", tenant=tenant)
    reader = Client(SERVER, api_key=read.key, tenant=tenant)
    writer = Client(SERVER, api_key=write.key, tenant=tenant)

    assert reader.list_workflows().total == 0
    with pytest.raises(CloacinaApiError) as error:
        reader.execute_workflow("anything", {})
    assert (error.value.status, error.value.code) == (403, "insufficient_permissions")
    with pytest.raises(CloacinaApiError) as error:
        writer.create_key(unique("nope"), role="read")
    assert (error.value.status, error.value.code) == (403, "insufficient_permissions")
    with pytest.raises(CloacinaApiError) as error:
        writer.execute_workflow("anything", {})
    assert error.value.code == "execution_failed", "write may execute"

    # Revoked: refused at once, not after the cache's TTL.
    admin.revoke_key(read.id)
    with pytest.raises(CloacinaApiError) as error:
        reader.list_workflows()
    assert error.value.status == 401
    with pytest.raises(CloacinaApiError) as error:
        admin.revoke_key(read.id)
    assert (error.value.status, error.value.code) == (404, "key_not_found")


def test_a_tenant_key_sees_its_tenant_only(admin: Client, tenant: str) -> None:
    other = unique("other")
    admin.create_tenant(other)
    try:
        key = admin.create_tenant_key(unique("acme"), role="admin", tenant=tenant)
        mine = Client(SERVER, api_key=key.key, tenant=tenant)
        assert mine.list_executions().tenant_id == tenant
        with pytest.raises(CloacinaApiError) as error:
            mine.list_executions(tenant=other)
        assert (error.value.status, error.value.code) == (403, "tenant_access_denied")
        with pytest.raises(CloacinaApiError) as error:
            mine.create_tenant(unique("sneaky"))
        assert (error.value.status, error.value.code) == (403, "admin_required")
        with pytest.raises(CloacinaApiError) as error:
            mine.list_tenants()
        assert error.value.status == 403
        # Its keys list holds its tenant's keys only.
        assert {k.tenant_id for k in mine.list_keys().items} == {tenant}
    finally:
        admin.remove_tenant(other)


def test_removing_a_tenant_leaves_nothing_stale(admin: Client, etl_package: bytes) -> None:
    name = unique("doomed")
    admin.create_tenant(name)
    key = admin.create_tenant_key(unique("k"), role="write", tenant=name)
    admin.upload_workflow(etl_package, tenant=name)
    wait_loaded(admin, "etl", name)
    scoped = Client(SERVER, api_key=key.key, tenant=name)
    assert scoped.list_workflows().total == 1

    removed = admin.remove_tenant(name)
    assert removed.status == "removed" and removed.revoked_keys == 1
    assert name not in [t.name for t in admin.list_tenants().items]
    with pytest.raises(CloacinaApiError) as error:
        scoped.list_workflows()
    assert error.value.status == 401, "its keys were revoked"
    with pytest.raises(CloacinaApiError) as error:
        admin.list_workflows(tenant=name)
    assert error.value.status == 404

    # The same name again starts empty.
    admin.create_tenant(name)
    assert admin.list_workflows(tenant=name).total == 0
    assert admin.list_executions(tenant=name).total == 0
    admin.remove_tenant(name)


# ---- bad input ----


@pytest.fixture(scope="module")
def http() -> httpx.Client:
    return httpx.Client(base_url=SERVER, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "code"}, body
    if code:
        assert body["code"] == code, body


def test_unknown_routes_and_wrong_methods_are_json(http: httpx.Client) -> None:
    assert_error(http.get("/v1/nothing/here"), 404, "not_found")
    assert_error(http.put("/v1/tenants"), 405)
    # `..` cannot climb out of a path segment: it is a (bad) tenant name.
    assert_error(http.get("/v1/tenants/..%2F..%2Fetc/workflows"), 400, "invalid_request")


def test_malformed_bodies_are_refused(http: httpx.Client) -> None:
    assert_error(
        http.post("/v1/auth/keys", content=b"{not json", headers={"content-type": "application/json"}),
        400,
        "invalid_request",
    )
    assert_error(http.post("/v1/auth/keys", content=b"name=x", headers={"content-type": "text/plain"}), 415)
    assert_error(http.post("/v1/auth/keys", json={"name": "x", "role": "emperor"}), 400, "invalid_request")
    assert_error(
        http.post(
            "/v1/tenants/public/workflows/etl/execute",
            content=b"[1, 2",
            headers={"content-type": "application/json"},
        ),
        400,
    )
    assert_error(
        http.post("/v1/tenants/public/workflows/etl/execute", content=b"{}", headers={"content-type": "text/plain"}),
        415,
    )
    big = b'{"context": {"x": "' + b"a" * (2 << 20) + b'"}}'
    assert_error(
        http.post("/v1/tenants/public/workflows/etl/execute", content=big, headers={"content-type": "application/json"}),
        413,
    )
    assert_error(http.post("/v1/auth/keys", content=big, headers={"content-type": "application/json"}), 413)


def test_bad_uploads_are_refused(http: httpx.Client) -> None:
    assert_error(http.post("/v1/tenants/public/workflows", files={"other": ("x", b"abc")}), 400, "invalid_request")
    assert_error(http.post("/v1/tenants/public/workflows", files={"file": ("x", b"")}), 400, "upload_failed")
    assert_error(http.post("/v1/tenants/public/workflows", content=b"raw", headers={"content-type": "text/plain"}), 400)


def test_a_huge_upload_is_refused_early(http: httpx.Client) -> None:
    sent = 0

    def body():
        nonlocal sent
        chunk = b"\0" * (1 << 20)
        for _ in range(1024):
            sent += len(chunk)
            yield chunk

    started = time.time()
    try:
        response = http.post(
            "/v1/tenants/public/workflows",
            content=body(),
            headers={
                "content-type": "multipart/form-data; boundary=x",
                "content-length": str(1 << 30),
            },
        )
        assert_error(response, 413)
    except httpx.HTTPError:
        pass  # the server answered and closed while we were still sending
    assert sent < (300 << 20), f"{sent >> 20} MiB were sent before the refusal"
    assert time.time() - started < 30
    assert http.get("/health").status_code == 200, "the server stays up"


def test_ids_and_names_are_validated(http: httpx.Client) -> None:
    assert_error(http.get("/v1/tenants/public/executions/not-a-uuid"), 400)
    assert_error(http.get("/v1/tenants/public/executions/00000000-0000-4000-8000-000000000000"), 404, "execution_not_found")
    assert_error(http.delete("/v1/auth/keys/not-a-uuid"), 400, "invalid_key_id")
    assert_error(http.post("/v1/tenants", json={"name": "x'; DROP SCHEMA public; --"}), 400, "invalid_request")
    assert_error(http.get("/v1/tenants/no_such_tenant/workflows"), 404)
    assert_error(http.get("/v1/tenants/public/executions?limit=0"), 400, "invalid_pagination")
    assert_error(http.get("/v1/tenants/public/executions?limit=abc"), 400, "invalid_pagination")
    assert_error(http.get("/v1/tenants/public/executions", headers={"Authorization": "Bearer clk_wrong"}), 401, "unauthorized")
    assert_error(http.get("/v1/tenants/public/executions", headers={"Authorization": "Basic abc"}), 401, "unauthorized")


def test_request_ids_come_back_and_metrics_count(http: httpx.Client) -> None:
    response = http.get("/health", headers={"x-request-id": "trace-me-42"})
    assert response.headers["x-request-id"] == "trace-me-42"
    assert http.get("/health").headers["x-request-id"]
    metrics = httpx.get(f"{SERVER}/metrics").text
    assert 'cloacina_http_request_duration_seconds_count{method="GET",route="/health",status="200"}' in metrics
    assert "cloacina_ws_tickets" in metrics
    for family in (
        "cloacina_executions_total",
        "cloacina_tasks_total",
        "cloacina_task_duration_seconds_bucket",
        "cloacina_package_loads_total",
        "cloacina_reconcile_duration_seconds_count",
        "cloacina_websocket_connections",
    ):
        assert family in metrics, family
    completed = [
        line for line in metrics.splitlines() if line.startswith('cloacina_tasks_total{outcome="completed"}')
    ]
    assert completed and int(completed[0].split()[-1]) > 0, "the suite's tasks were counted"
    doc = httpx.get(f"{SERVER}/openapi.json").json()
    assert "/v1/tenants/{tenant_id}/workflows/{name}/execute" in doc["paths"]
