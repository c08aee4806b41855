"""``DefaultRunner`` and ``WorkflowResult``: running registered workflows
on the cloacina runtime, in this process, on SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import atexit
import json
import threading
import weakref
from typing import Any, Dict, Mapping, Optional, Union
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from . import _native
from ._config import DefaultRunnerConfig
from ._context import Context
from ._errors import ConfigurationError, ExecutionError, RunnerError
from ._workflow import REGISTRY, Workflow

_LIVE: "weakref.WeakSet[DefaultRunner]" = weakref.WeakSet()
_LAST_BACKEND: Optional[str] = None


class WorkflowResult:
    """How an execution ended. ``status`` is ``"Completed"``, ``"Failed"``
    or ``"Cancelled"``; ``error_message`` summarises failed tasks and
    ``task_errors`` holds each failed task's own error."""

    def __init__(self, fields: Mapping[str, Any], input_context: Context) -> None:
        self._fields = dict(fields)
        final = fields.get("final_context")
        self._final = (
            Context._from_json_object(json.loads(final)) if final is not None
            else Context._from_json_object(json.loads(input_context.to_json()))
        )

    @property
    def status(self) -> str:
        return self._fields["status"]

    @property
    def start_time(self) -> str:
        return self._fields["start_time"]

    @property
    def end_time(self) -> Optional[str]:
        return self._fields["end_time"]

    @property
    def final_context(self) -> Context:
        return Context._from_json_object(json.loads(self._final.to_json()))

    @property
    def error_message(self) -> Optional[str]:
        return self._fields["error_message"]

    @property
    def execution_id(self) -> str:
        return self._fields["execution_id"]

    @property
    def workflow_name(self) -> str:
        return self._fields["workflow_name"]

    @property
    def duration(self) -> Optional[float]:
        """Seconds from start to end."""
        return self._fields["duration"]

    @property
    def failed_task(self) -> Optional[str]:
        return self._fields["failed_task"]

    @property
    def task_errors(self) -> Dict[str, str]:
        """The last error of every task that had one, by task id."""
        return dict(self._fields["task_errors"])

    def __repr__(self) -> str:
        return f"WorkflowResult(status={self.status}, error={self.error_message})"


PipelineResult = WorkflowResult


def _schema_of(url: str) -> "tuple[str, Optional[str]]":
    """A PostgreSQL URL's schema (``options=-csearch_path=<s>``, as
    ``TenantCredentials.connection_string`` carries it), and the URL
    without it: the runtime confines itself to the schema."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        return url, None
    schema = None
    kept = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "options" and "search_path=" in value:
            schema = unquote(value.split("search_path=", 1)[1]).split()[0].strip('"')
        else:
            kept.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(kept))), schema


class DefaultRunner:
    """Runs registered workflows on the database at ``database_url``:
    ``sqlite:///path/app.db``, ``sqlite://:memory:`` (a scratch database
    removed at shutdown) or ``postgresql://user:password@host:port/db``.

    Tasks run on the runtime's threads; ``execute`` waits without the
    GIL and returns as soon as the execution ends. Use it as a context
    manager, or call ``shutdown()``.
    """

    def __init__(self, database_url: str, config: Optional[DefaultRunnerConfig] = None,
                 *, _schema: Optional[str] = None) -> None:
        global _LAST_BACKEND
        if not isinstance(database_url, str):
            raise ConfigurationError(f"database_url must be a str, not {type(database_url).__name__}")
        self._config = config if config is not None else DefaultRunnerConfig()
        url, schema = _schema_of(database_url)
        self._native = _native.NativeRunner(
            url, _schema or schema, self._config.max_concurrent_tasks
        )
        self._registered: Dict[str, str] = {}
        self._lock = threading.Lock()
        _LAST_BACKEND = self._native.backend
        _LIVE.add(self)
        with REGISTRY.lock:
            REGISTRY.listeners.append(self._learn)
            known = list(REGISTRY.workflows.values())
        for workflow in known:
            self._learn(workflow)

    @staticmethod
    def with_config(database_url: str, config: DefaultRunnerConfig) -> "DefaultRunner":
        return DefaultRunner(database_url, config)

    @staticmethod
    def with_schema(database_url: str, schema: str) -> "DefaultRunner":
        """A runner confined to PostgreSQL schema ``schema`` (created when
        missing)."""
        if not isinstance(database_url, str) or not database_url.startswith(("postgres://", "postgresql://")):
            raise ConfigurationError("Schema isolation is only supported with PostgreSQL: give a postgresql:// URL")
        if not schema:
            raise ConfigurationError("Schema name cannot be empty")
        if not all(c.isascii() and (c.isalnum() or c == "_") for c in schema):
            raise ConfigurationError("Schema name must contain only alphanumeric characters and underscores")
        try:
            return DefaultRunner(database_url, _schema=schema)
        except RunnerError as error:
            raise RunnerError(f"{error} (Failed to set up schema '{schema}')") from None

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._native.backend

    def _learn(self, workflow: Workflow) -> None:
        with self._lock:
            if self._native.is_shut_down or self._registered.get(workflow.name) == workflow.version:
                return
            self._native.register(workflow.name, workflow.version, workflow._native_tasks())
            self._registered[workflow.name] = workflow.version

    def _prepare(self, workflow_name: str, context: Union[Context, Mapping[str, Any], None]) -> Context:
        if context is None:
            context = Context()
        elif not isinstance(context, Context):
            context = Context(context)
        workflow = REGISTRY.workflows.get(workflow_name)
        if workflow is not None:
            self._learn(workflow)
        return context

    def start(self, workflow_name: str, context: Union[Context, Mapping[str, Any], None] = None) -> str:
        """Starts ``workflow_name`` and returns its execution id once the
        start is durable."""
        context = self._prepare(workflow_name, context)
        return self._native.start(workflow_name, context.to_json())

    def wait(self, execution_id: str, timeout: Optional[float] = None,
             _input: Optional[Context] = None) -> WorkflowResult:
        """Waits (without the GIL) for an execution to end."""
        fields = self._native.wait(execution_id, timeout)
        return WorkflowResult(fields, _input or Context())

    def execute(self, workflow_name: str, context: Union[Context, Mapping[str, Any], None] = None) -> WorkflowResult:
        """Runs ``workflow_name`` with ``context`` and returns its result.
        A failed task gives ``status == "Failed"``; an unknown workflow or
        the workflow timeout raises ``ExecutionError`` (a ``ValueError``)."""
        context = self._prepare(workflow_name, context)
        execution_id = self._native.start(workflow_name, context.to_json())
        return self.wait(execution_id, self._config.workflow_timeout_seconds, context)

    async def execute_async(self, workflow_name: str,
                            context: Union[Context, Mapping[str, Any], None] = None) -> WorkflowResult:
        """``execute`` for asyncio: waits on a worker thread."""
        return await asyncio.get_running_loop().run_in_executor(
            None, self.execute, workflow_name, context
        )

    def cancel(self, execution_id: str) -> bool:
        """Cancels a running execution; False when it had already ended."""
        return self._native.cancel(execution_id)

    def shutdown(self) -> None:
        """Stops taking work, lets running tasks finish (5 s at most) and
        closes the database. Safe to call twice."""
        with REGISTRY.lock:
            if self._learn in REGISTRY.listeners:
                REGISTRY.listeners.remove(self._learn)
        self._native.shutdown()

    def __enter__(self) -> "DefaultRunner":
        return self

    def __exit__(self, *exc: Any) -> bool:
        self.shutdown()
        return False

    def __repr__(self) -> str:
        native = getattr(self, "_native", None)
        return f"DefaultRunner({native.backend if native else 'not started'})"


def get_backend() -> str:
    """The backend of the most recently started runner (``"sqlite"`` or
    ``"postgresql"``); ``"sqlite"``, the embedded default, before any. This
    build runs both."""
    return _LAST_BACKEND or "sqlite"


@atexit.register
def _stop_all() -> None:
    # Tasks must not call into an interpreter that is finalising.
    for runner in list(_LIVE):
        try:
            runner.shutdown()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
