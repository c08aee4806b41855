"""``DefaultRunner`` and ``WorkflowResult``: running registered workflows
on the cloacina runtime, in this process, on SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import atexit
import json
import threading
import weakref
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Union
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from . import _graphs, _native, _triggers
from ._config import DefaultRunnerConfig
from ._context import Context
from ._errors import ConfigurationError, GraphError, RunnerError, ScheduleError
from ._threads import TaskThreads
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
        self._threads = TaskThreads("cloaca-task")
        self._tenant = _schema or schema or "public"
        self._native = _native.NativeRunner(
            url, self._threads.submit, _schema or schema, self._config.max_concurrent_tasks,
            self._config.enable_cron_scheduling,
        )
        # Which database this is, for the one graph runtime per database
        # (a scratch database is this runner's alone).
        self._database = ("scratch", id(self)) if url.strip() in (":memory:", "sqlite://:memory:") \
            else (url, self._tenant)
        self._registered: Dict[str, Workflow] = {}
        self._lock = threading.Lock()
        self._triggers: Dict[str, _TriggerSchedule] = {}
        try:
            for workflow in REGISTRY.listen(self._learn):
                self._learn(workflow)
            for definition in _triggers.add_listener(self._poll):
                self._poll(definition)
            graphs = _graphs.listen(self._run_graph)
            if _graphs.join(self._database, self):
                for graph in graphs:
                    self._run_graph(graph)
        except BaseException:
            self.shutdown()
            raise
        _LAST_BACKEND = self._native.backend
        _LIVE.add(self)

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
            # The same definition object is registered once; a new one
            # (even with the same shape, so the same version) replaces it.
            if self._native.is_shut_down or self._registered.get(workflow.name) is workflow:
                return
            default_timeout_ms = self._config.task_timeout_seconds * 1000
            self._native.register(workflow.name, workflow.version, workflow._native_tasks(default_timeout_ms))
            self._registered[workflow.name] = workflow

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

    # -- cron schedules: stored in the database, fired by whichever runner
    # on it takes the firing first ------------------------------------------

    def register_cron_workflow(self, workflow_name: str, cron_expression: str, timezone: str = "UTC") -> str:
        """Runs ``workflow_name`` at each occurrence of ``cron_expression``
        in ``timezone`` (IANA); returns the schedule's id."""
        return self._native.cron_register(workflow_name, cron_expression, timezone)

    def list_cron_schedules(self, enabled_only: Optional[bool] = None, limit: Optional[int] = None,
                            offset: Optional[int] = None) -> List[Dict[str, Any]]:
        return self._native.cron_list(bool(enabled_only), 100 if limit is None else limit,
                                      0 if offset is None else offset)

    def get_cron_schedule(self, schedule_id: str) -> Dict[str, Any]:
        return self._native.cron_get(schedule_id)

    def update_cron_schedule(self, schedule_id: str, cron_expression: str, timezone: str) -> None:
        self._native.cron_update(schedule_id, cron_expression, timezone)

    def set_cron_schedule_enabled(self, schedule_id: str, enabled: bool) -> None:
        self._native.cron_set_enabled(schedule_id, bool(enabled))

    def delete_cron_schedule(self, schedule_id: str) -> None:
        self._native.cron_delete(schedule_id)

    def get_cron_execution_history(self, schedule_id: str, limit: Optional[int] = None,
                                   offset: Optional[int] = None) -> List[Dict[str, Any]]:
        """The executions the schedule started, newest first."""
        self._native.cron_get(schedule_id)
        return self._native.started_by(f"cron:{schedule_id}", 100 if limit is None else limit,
                                       0 if offset is None else offset)

    def get_cron_execution_stats(self, since: str) -> Dict[str, Any]:
        """Counts of cron-started executions since ``since`` (RFC 3339):
        total, successful, lost (still running after
        ``cron_lost_threshold_minutes``) and the success rate in percent."""
        try:
            moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except (AttributeError, ValueError) as error:
            raise ScheduleError(f"Invalid datetime format: {since!r} ({error})") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        lost_after_ms = self._config.cron_lost_threshold_minutes * 60_000
        return self._native.cron_stats(int(moment.timestamp() * 1000), lost_after_ms)

    # -- poll triggers: every @cloaca.trigger(on=...) is polled here -------

    def _poll(self, definition: "_triggers.TriggerDefinition") -> None:
        if definition.workflow is None or self._native.is_shut_down:
            return
        if definition.cron is not None:
            if not self._config.enable_cron_scheduling:
                return
            self._native.add_cron_trigger(definition.name, definition.workflow, definition.cron,
                                          definition.timezone or "UTC")
            return
        schedule = self._triggers.get(definition.name)
        if schedule is None or schedule.definition is not definition:
            schedule = _TriggerSchedule(definition, created_at=_now())
            self._triggers[definition.name] = schedule
        if schedule.enabled:
            self._native.add_trigger(definition.name, definition.workflow, definition.poll_interval_ms,
                                     definition.allow_concurrent, schedule.poll)

    def list_trigger_schedules(self, enabled_only: Optional[bool] = None, limit: Optional[int] = None,
                               offset: Optional[int] = None) -> List[Dict[str, Any]]:
        schedules = [t.to_dict() for t in self._triggers.values() if t.enabled or not enabled_only]
        start = offset or 0
        return schedules[start:start + (100 if limit is None else limit)]

    def get_trigger_schedule(self, trigger_name: str) -> Optional[Dict[str, Any]]:
        schedule = self._triggers.get(trigger_name)
        return schedule.to_dict() if schedule else None

    def set_trigger_enabled(self, trigger_name: str, enabled: bool) -> None:
        schedule = self._triggers.get(trigger_name)
        if schedule is None:
            raise ScheduleError(f"Failed to set trigger enabled: no trigger named '{trigger_name}'")
        schedule.enabled = bool(enabled)
        schedule.updated_at = _now()
        if enabled:
            self._poll(schedule.definition)
        else:
            self._native.remove_trigger(trigger_name)

    def get_trigger_execution_history(self, trigger_name: str, limit: Optional[int] = None,
                                      offset: Optional[int] = None) -> List[Dict[str, Any]]:
        """The executions the trigger started, newest first."""
        return self._native.started_by(f"trigger:{trigger_name}", 100 if limit is None else limit,
                                       0 if offset is None else offset)

    # -- computation graphs fired by reactors, on the host's graph runtime --

    def _run_graph(self, graph: "_graphs.ComputationGraphBuilder") -> None:
        if self._native.is_shut_down or _graphs.owner(self._database) is not self:
            return
        with _graphs.REGISTRATION:
            declaration = graph._declaration(_graphs.subscriptions_of(graph, self._tenant))
            self._native.register_graph(
                json.dumps(declaration), _graphs.next_generation(), graph._native_tasks(),
                self._config.task_timeout_seconds * 1000,
            )

    def _take_over_graphs(self) -> None:
        """Runs this database's graphs (the runner that ran them stopped)."""
        for graph in _graphs.listen(self._run_graph):
            self._run_graph(graph)

    def _graph_native(self) -> Any:
        """The native runner that runs this database's graphs."""
        owner = _graphs.owner(self._database)
        return (owner or self)._native

    def push_event(self, accumulator: str, event: Any) -> int:
        """Feeds ``event`` to ``accumulator`` (through its function, when it
        has one; a ``None`` result drops the event) and returns once it is
        durable: the number of graphs it went to."""
        declared = _graphs.ACCUMULATORS.get(accumulator)
        if declared is None:
            raise GraphError(
                f"no accumulator named '{accumulator}' takes events: declare it with "
                "@cloaca.passthrough_accumulator (or batch_, stream_)"
            )
        if declared.kind not in ("passthrough", "stream", "batch"):
            raise GraphError(f"accumulator '{accumulator}' is a {declared.kind} accumulator; it takes no events")
        event = declared.function(event)
        if event is None:
            return 0
        if isinstance(event, Context):
            event = event.to_dict()
        try:
            text = json.dumps(event, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise GraphError(f"the event for '{accumulator}' is not JSON: {error}") from None
        return self._graph_native().push_event(accumulator, text)

    def fire_graph(self, graph: str) -> Dict[str, Any]:
        """Fires ``graph`` now with its sources' current values; returns the
        firing (``inputs``, ``outputs``, ``ok``, ``error``...)."""
        fired = json.loads(self._graph_native().graph_command(graph, "fire"))["fired"]
        fired["outputs"] = _graphs.plain_outputs(graph, fired["outputs"])
        return fired

    def pause_graph(self, graph: str) -> None:
        self._graph_native().graph_command(graph, "pause")

    def resume_graph(self, graph: str) -> None:
        """Resumes ``graph``, firing at once if its criterion holds."""
        self._graph_native().graph_command(graph, "resume")

    def graph_state(self, graph: str) -> Dict[str, Any]:
        """Each source's current value."""
        return json.loads(self._graph_native().graph_command(graph, "state"))["state"]

    def graph_status(self, graph: str) -> Optional[Dict[str, Any]]:
        """Health, paused, fire count, pending events... or None when the
        graph does not run here."""
        text = self._graph_native().graph_status(graph)
        return json.loads(text) if text is not None else None

    def graph_firings(self, graph: str, limit: int = 20) -> List[Dict[str, Any]]:
        """The latest firings, newest first."""
        firings = json.loads(self._graph_native().graph_firings(graph, limit))
        for firing in firings:
            firing["outputs"] = _graphs.plain_outputs(graph, firing["outputs"])
        return firings

    def subscribe_workflow_to_reactor(self, reactor: str, workflow: str, tenant: Optional[str] = None,
                                      *, when: Optional[str] = None) -> str:
        """Starts ``workflow`` once per firing of ``reactor``'s graph (in
        ``tenant``, by default this runner's), with the firing's inputs and
        outputs as its context; returns the subscription's id.
        (Subscriptions belong to this process: declare them again after a
        restart.)"""
        if when is not None:
            raise ConfigurationError(
                "subscription filters (when=) are not supported: subscribe, and test the context "
                "in the workflow's first task"
            )
        return _graphs.subscribe(reactor, workflow, tenant or self._tenant)

    def unsubscribe_workflow_from_reactor(self, reactor: str, workflow: str,
                                          tenant: Optional[str] = None) -> bool:
        return _graphs.unsubscribe(reactor, workflow, tenant or self._tenant)

    def list_reactor_subscriptions(self, tenant: Optional[str] = None) -> List[Dict[str, Any]]:
        return [
            {"id": s.id, "reactor_name": s.reactor, "workflow_name": s.workflow, "tenant": s.tenant}
            for s in _graphs.SUBSCRIPTIONS.values()
            if tenant is None or s.tenant == tenant
        ]

    def shutdown(self) -> None:
        """Stops taking work, lets running tasks finish (5 s at most) and
        closes the database. Safe to call twice."""
        REGISTRY.unlisten(self._learn)
        _triggers.remove_listener(self._poll)
        _graphs.unlisten(self._run_graph)
        successor = _graphs.leave(self._database, self)
        self._native.shutdown()
        if successor is not None:
            successor._take_over_graphs()

    def __enter__(self) -> "DefaultRunner":
        return self

    def __exit__(self, *exc: Any) -> bool:
        self.shutdown()
        return False

    def __repr__(self) -> str:
        native = getattr(self, "_native", None)
        return f"DefaultRunner({native.backend if native else 'not started'})"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _TriggerSchedule:
    """A trigger as one runner polls it."""

    def __init__(self, definition: "_triggers.TriggerDefinition", created_at: str) -> None:
        self.definition = definition
        self.enabled = True
        self.created_at = created_at
        self.updated_at = created_at
        self.last_poll_at: Optional[str] = None

    def poll(self, _context_json: str, _attempt: int) -> str:
        """What the runtime calls: the poll function's answer as JSON."""
        self.last_poll_at = _now()
        answer = _triggers.normalise_poll_result(self.definition.function())
        if not answer.is_fire_result():
            return "null"
        context = answer.context.to_dict() if answer.context is not None else {}
        fired: Dict[str, Any] = {"context": context}
        if answer.key is not None:
            fired["key"] = answer.key
        return json.dumps(fired)

    def to_dict(self) -> Dict[str, Any]:
        d = self.definition
        return {
            "id": d.name, "trigger_name": d.name, "workflow_name": d.workflow,
            "poll_interval_ms": d.poll_interval_ms, "allow_concurrent": d.allow_concurrent,
            "enabled": self.enabled, "last_poll_at": self.last_poll_at,
            "created_at": self.created_at, "updated_at": self.updated_at,
        }


def get_backend() -> str:
    """The backend of the most recently started runner (``"sqlite"`` or
    ``"postgresql"``); ``"sqlite"``, the embedded default, before any. This
    build runs both."""
    return _LAST_BACKEND or "sqlite"


@atexit.register
def _stop_all() -> None:
    # Runners stop first, so that work in flight (a graph's firing, a task
    # within the shutdown grace) ends as it would on shutdown(); then the
    # runtime's threads never call into this interpreter again, and
    # attempts still running stop with their daemon threads.
    for runner in list(_LIVE):
        try:
            runner.shutdown()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
    _native.interpreter_exiting()
