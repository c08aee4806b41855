"""Fixtures: a runner on a fresh database of the backend under test.

CLOACA_TEST_DATABASE picks the backend: ``sqlite`` (default) or
``postgres`` (the server at CLOACINA_TEST_POSTGRES_URL, default
postgres://postgres@127.0.0.1:5432/test; each test gets its own schema).
"""

import os
import time
import uuid

import pytest

import cloaca

BACKEND = os.environ.get("CLOACA_TEST_DATABASE", "sqlite")
POSTGRES_URL = os.environ.get("CLOACINA_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")


@pytest.fixture
def database_url(tmp_path):
    """A URL for a fresh database (a new SQLite file, or a PostgreSQL URL
    confined to a new schema, dropped afterwards)."""
    if BACKEND == "sqlite":
        yield f"sqlite://{tmp_path}/cloaca.db?mode=rwc&_journal_mode=WAL&_busy_timeout=5000"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    cloaca.DatabaseAdmin(POSTGRES_URL).remove_tenant(schema, schema)


@pytest.fixture
def runner(database_url):
    with cloaca.DefaultRunner(database_url) as runner:
        yield runner


@pytest.fixture
def name():
    """A workflow name no other test uses (the registry is per process)."""
    return f"wf_{uuid.uuid4().hex[:10]}"


def postgres_only():
    return pytest.mark.skipif(BACKEND != "postgres", reason="PostgreSQL only (CLOACA_TEST_DATABASE=postgres)")


def wait_for(check, seconds, what):
    """``check()``'s first true value within ``seconds``, polled every 50 ms."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} within {seconds} s")
