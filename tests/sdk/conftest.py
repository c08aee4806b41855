"""Starts a real server for the SDK suites: `cloacinactl server start` on a
free loopback port, on a fresh SQLite home or (CLOACINA_SDK_DATABASE=postgres)
a fresh PostgreSQL database, with a known bootstrap key. The SDK's own
contract suite reads CLOACINA_SERVER_URL / CLOACINA_API_KEY, set here before
collection."""

import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
CLOACINACTL = Path(os.environ.get("CLOACINACTL", TARGET / "debug" / "cloacinactl"))
PG_URL = os.environ.get(
    "CLOACINA_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test"
)

_server = {}


def _psql(sql: str) -> None:
    import psycopg  # installed by tests/sdk/run

    with psycopg.connect(PG_URL, autocommit=True) as connection:
        connection.execute(sql)


def pytest_configure(config):
    home = Path(tempfile.mkdtemp(prefix="cloacina-sdk-"))
    key = "clk_" + secrets.token_hex(24)
    args = [
        str(CLOACINACTL),
        "server",
        "start",
        "--bind",
        "127.0.0.1:0",
        "--home",
        str(home),
        "--bootstrap-key",
        key,
        "--in-process",
        "--shutdown-grace",
        "5",
    ]
    database = None
    database_url = f"sqlite://{home / 'cloacina.db'}"
    if os.environ.get("CLOACINA_SDK_DATABASE") == "postgres":
        database = f"sdk_{secrets.token_hex(6)}"
        _psql(f"CREATE DATABASE {database}")
        base = PG_URL.rsplit("/", 1)[0]
        database_url = f"{base}/{database}"
        args += ["--database-url", database_url]
    env = dict(os.environ, CLOACINA_LOG="info,sqlx=warn", NO_COLOR="1")
    process = subprocess.Popen(
        args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True
    )
    log = []
    address = None
    deadline = time.time() + 120
    while time.time() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        log.append(line)
        match = re.search(r"serving the HTTP API addr=(\S+)", line)
        if match:
            address = match.group(1)
            break
    if address is None:
        process.kill()
        raise RuntimeError("the server did not start:\n" + "".join(log))
    # Keep draining the log so the server never blocks on a full pipe.
    threading.Thread(
        target=lambda: [log.append(line) for line in process.stderr], daemon=True
    ).start()
    url = f"http://{address}"
    os.environ["CLOACINA_SERVER_URL"] = url
    os.environ["CLOACINA_API_KEY"] = key
    _server.update(
        process=process,
        home=home,
        database=database,
        database_url=database_url,
        log=log,
        url=url,
        key=key,
    )
    urllib.request.urlopen(f"{url}/health", timeout=5).read()


def pytest_unconfigure(config):
    process = _server.get("process")
    if process is None:
        return
    process.terminate()
    try:
        code = process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        code = None
    if _server.get("database"):
        try:
            _psql(f"DROP DATABASE IF EXISTS {_server['database']} WITH (FORCE)")
        except Exception:  # noqa: BLE001 - best effort
            pass
    shutil.rmtree(_server["home"], ignore_errors=True)
    if code != 0:
        print("".join(_server["log"][-200:]))
        raise RuntimeError(f"the server did not stop cleanly (exit {code})")


def server_database_url() -> str:
    """The server's database, for offline commands (`trust add`)."""
    return _server["database_url"]


def server_log() -> str:
    return "".join(_server.get("log", []))
