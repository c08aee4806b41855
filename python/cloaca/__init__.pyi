"""Type stubs for ``cloaca``: Python workflows on the cloacina engine.

The public surface of cloaca 0.8.0 (28 names) plus these additions:
``PipelineResult`` (an alias of ``WorkflowResult``), ``get_backend()``,
``__version__``, the exception hierarchy, ``DefaultRunner(url, config)``,
``DefaultRunner.execute_async/start/wait``, and ``@task`` outside a
``WorkflowBuilder`` block.
"""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])
_C = TypeVar("_C", bound=type)

__version__: str

__all__ = [
    "Context",
    "task",
    "TaskHandle",
    "trigger",
    "TriggerResult",
    "reactor",
    "WorkflowBuilder",
    "Workflow",
    "register_workflow_constructor",
    "DefaultRunner",
    "WorkflowResult",
    "PipelineResult",
    "DefaultRunnerConfig",
    "TaskNamespace",
    "WorkflowContext",
    "RetryPolicy",
    "RetryPolicyBuilder",
    "BackoffStrategy",
    "RetryCondition",
    "ComputationGraphBuilder",
    "node",
    "passthrough_accumulator",
    "stream_accumulator",
    "polling_accumulator",
    "batch_accumulator",
    "state_accumulator",
    "DatabaseAdmin",
    "TenantConfig",
    "TenantCredentials",
    "get_backend",
    "CloacaError",
    "ConfigurationError",
    "WorkflowError",
    "TaskError",
    "ContextError",
    "ContextKeyError",
    "ContextTypeError",
    "RunnerError",
    "ExecutionError",
    "ScheduleError",
    "GraphError",
    "AdminError",
    "__version__",
]

def get_backend() -> str:
    """``"sqlite"`` or ``"postgresql"``: the backend of the most recently
    started runner (``"sqlite"`` before any)."""

# ---------------------------------------------------------------------------
# Errors: each also derives from the built-in that cloaca 0.8.0 raised.
# ---------------------------------------------------------------------------

class CloacaError(Exception): ...
class ConfigurationError(CloacaError, ValueError): ...
class WorkflowError(CloacaError, ValueError): ...
class TaskError(CloacaError, ValueError): ...
class ContextError(CloacaError, ValueError): ...
class ContextKeyError(ContextError, KeyError): ...
class ContextTypeError(ContextError, TypeError): ...
class RunnerError(CloacaError, RuntimeError): ...
class ExecutionError(CloacaError, ValueError): ...
class ScheduleError(CloacaError, ValueError): ...
class GraphError(CloacaError, ValueError): ...
class AdminError(CloacaError, RuntimeError): ...

# ---------------------------------------------------------------------------
# Context
# ---------------------------------------------------------------------------

class Context:
    """A JSON-valued, ``str``-keyed map passed between tasks.  Values are
    copied in and out; non-JSON values raise ``ContextTypeError``."""

    __hash__: ClassVar[None]  # type: ignore[assignment]
    def __init__(self, data: Mapping[str, Any] | None = None) -> None: ...
    def get(self, key: str, default: Any = None) -> Any: ...
    def set(self, key: str, value: Any) -> None: ...
    def insert(self, key: str, value: Any) -> None:
        """Raises ``ContextError`` (a ``ValueError``) if ``key`` exists."""
    def update(self, key: str, value: Any) -> None:
        """Raises ``ContextKeyError`` (a ``KeyError``) if ``key`` is missing."""
    def remove(self, key: str) -> Any: ...
    def to_dict(self) -> dict[str, Any]: ...
    def update_from_dict(self, data: Mapping[str, Any]) -> None: ...
    def to_json(self) -> str: ...
    @staticmethod
    def from_json(json_str: str) -> Context: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: str) -> bool: ...
    def __getitem__(self, key: str) -> Any:
        """Raises ``ContextKeyError`` if ``key`` is missing or holds ``null``."""
    def __setitem__(self, key: str, value: Any) -> None: ...
    def __delitem__(self, key: str) -> None: ...
    def __eq__(self, other: object) -> bool: ...

# ---------------------------------------------------------------------------
# Tasks and workflows
# ---------------------------------------------------------------------------

def task(
    *,
    id: str | None = None,
    dependencies: Sequence[str | Callable[..., Any]] | None = None,
    retry_attempts: int | None = None,
    retry_backoff: str | None = None,
    retry_delay_ms: int | None = None,
    retry_max_delay_ms: int | None = None,
    retry_condition: str | None = None,
    retry_jitter: bool | None = None,
    timeout_seconds: float | None = None,
    retry_policy: RetryPolicy | None = None,
    on_success: Callable[[str, Context], object] | None = None,
    on_failure: Callable[[str, str, Context], object] | None = None,
    invokes: ComputationGraphBuilder | None = None,
    post_invocation: Callable[[Context], Context | None] | None = None,
) -> Callable[[_F], _F]:
    """Register the decorated function as a task and return it unchanged.

    Inside ``with WorkflowBuilder(...)`` the task joins that workflow;
    outside, it is registered for a later ``WorkflowBuilder.add_task``.
    ``retry_attempts`` counts every attempt (default 3); ``retry_backoff``
    is ``"fixed"``, ``"linear"`` or ``"exponential"`` (default);
    ``retry_condition`` is ``"never"``, ``"transient"`` or ``"all"``
    (default); ``retry_policy`` gives the same settings as a
    ``RetryPolicy``.  ``timeout_seconds`` overrides the runner's task
    timeout.  A body returns a ``Context`` (its output) or ``None`` (the
    input passes through unchanged).
    """

class TaskHandle:
    """Passed as the second argument to a task whose second parameter is
    named ``handle`` or ``task_handle``.  Not constructible."""

    def defer_until(self, condition: Callable[[], bool], poll_interval_ms: int = 1000) -> None:
        """Release the concurrency slot and poll ``condition`` until it
        returns true (an exception counts as false)."""
    def is_slot_held(self) -> bool: ...

class WorkflowBuilder:
    """Defines a workflow.  Used as a context manager, every ``@task``
    declared in the block joins the workflow, which is validated and
    registered when the block exits."""

    def __init__(
        self,
        name: str,
        *,
        tenant: str | None = None,
        package: str | None = None,
        workflow: str | None = None,
    ) -> None: ...
    def description(self, description: str) -> None: ...
    def tag(self, key: str, value: str) -> None: ...
    def add_task(self, task: str | Callable[..., Any]) -> None: ...
    def build(self) -> Workflow: ...
    def __enter__(self) -> WorkflowBuilder: ...
    def __exit__(self, *exc: object) -> None: ...

class Workflow:
    """A validated workflow: tasks and their dependencies.  Task names are
    rendered ``tenant::package::workflow::task``."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def version(self) -> str:
        """16 lowercase hex digits; equal definitions have equal versions."""
    @property
    def tags(self) -> dict[str, str]: ...
    def topological_sort(self) -> list[str]: ...
    def get_execution_levels(self) -> list[list[str]]: ...
    def get_roots(self) -> list[str]: ...
    def get_leaves(self) -> list[str]: ...
    def validate(self) -> None: ...

def register_workflow_constructor(name: str, constructor: Callable[[], Workflow]) -> None:
    """Call ``constructor()`` now and register the workflow it returns under
    ``name``, replacing any earlier one."""

# ---------------------------------------------------------------------------
# Running workflows
# ---------------------------------------------------------------------------

class WorkflowResult:
    """The outcome of one execution."""

    @property
    def status(self) -> str:
        """``"Completed"`` or ``"Failed"`` once finished (also ``"Pending"``,
        ``"Running"``, ``"Cancelled"``, ``"Paused"``)."""
    @property
    def start_time(self) -> str:
        """RFC 3339."""
    @property
    def end_time(self) -> str | None: ...
    @property
    def final_context(self) -> Context:
        """A copy of the output of the task that completed last."""
    @property
    def error_message(self) -> str | None:
        """``"<f> task(s) failed, <c> completed, <s> skipped"`` when failed."""
    @property
    def execution_id(self) -> str: ...
    @property
    def workflow_name(self) -> str: ...
    @property
    def duration(self) -> float | None:
        """Seconds from start to end; ``None`` while unfinished."""
    @property
    def failed_task(self) -> str | None: ...
    @property
    def task_errors(self) -> dict[str, str]:
        """The last error of every task that had one, by task id."""

PipelineResult = WorkflowResult

class DefaultRunner:
    """Runs workflows in this process on a database (SQLite or PostgreSQL).

    ``execute`` raises ``ExecutionError`` (a ``ValueError``) for an unknown
    workflow or a workflow timeout; a failing task does not raise, it yields
    ``status == "Failed"``.
    """

    def __init__(self, database_url: str, config: DefaultRunnerConfig | None = None) -> None: ...
    @staticmethod
    def with_config(database_url: str, config: DefaultRunnerConfig) -> DefaultRunner: ...
    @staticmethod
    def with_schema(database_url: str, schema: str) -> DefaultRunner:
        """PostgreSQL only: run in schema ``schema`` (alphanumerics and ``_``)."""
    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
    def execute(
        self, workflow_name: str, context: Context | Mapping[str, Any] | None = None
    ) -> WorkflowResult:
        """Run ``workflow_name`` and block until it finishes."""
    def execute_async(
        self, workflow_name: str, context: Context | Mapping[str, Any] | None = None
    ) -> Awaitable[WorkflowResult]: ...
    def start(
        self, workflow_name: str, context: Context | Mapping[str, Any] | None = None
    ) -> str:
        """Start an execution and return its id without waiting."""
    def wait(self, execution_id: str, timeout: float | None = None) -> WorkflowResult: ...
    def cancel(self, execution_id: str) -> bool:
        """Cancel a running execution; ``False`` if it had already ended."""
    def shutdown(self) -> None: ...
    def __enter__(self) -> DefaultRunner: ...
    def __exit__(self, *exc: object) -> None: ...
    # Cron schedules
    def register_cron_workflow(
        self, workflow_name: str, cron_expression: str, timezone: str = "UTC"
    ) -> str: ...
    def list_cron_schedules(
        self,
        enabled_only: bool | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[dict[str, Any]]: ...
    def get_cron_schedule(self, schedule_id: str) -> dict[str, Any]: ...
    def update_cron_schedule(
        self, schedule_id: str, cron_expression: str, timezone: str
    ) -> None: ...
    def set_cron_schedule_enabled(self, schedule_id: str, enabled: bool) -> None: ...
    def delete_cron_schedule(self, schedule_id: str) -> None: ...
    def get_cron_execution_history(
        self, schedule_id: str, limit: int | None = None, offset: int | None = None
    ) -> list[dict[str, Any]]: ...
    def get_cron_execution_stats(self, since: str) -> dict[str, Any]:
        """``since`` is RFC 3339; returns ``total_executions``,
        ``successful_executions``, ``lost_executions``, ``success_rate``."""
    # Triggers
    def list_trigger_schedules(
        self,
        enabled_only: bool | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[dict[str, Any]]: ...
    def get_trigger_schedule(self, trigger_name: str) -> dict[str, Any] | None: ...
    def set_trigger_enabled(self, trigger_name: str, enabled: bool) -> None: ...
    def get_trigger_execution_history(
        self, trigger_name: str, limit: int | None = None, offset: int | None = None
    ) -> list[dict[str, Any]]: ...
    # Computation graphs fired by reactors (run on the host's graph runtime)
    def push_event(self, accumulator: str, event: Any) -> int:
        """Feeds ``event`` to ``accumulator`` through its function; returns
        once durable, with the number of graphs it went to."""
    def fire_graph(self, graph: str) -> dict[str, Any]: ...
    def pause_graph(self, graph: str) -> None: ...
    def resume_graph(self, graph: str) -> None: ...
    def graph_state(self, graph: str) -> dict[str, Any]: ...
    def graph_status(self, graph: str) -> dict[str, Any] | None: ...
    def graph_firings(self, graph: str, limit: int = 20) -> list[dict[str, Any]]: ...
    # Reactor subscriptions
    def subscribe_workflow_to_reactor(
        self, reactor: str, workflow: str, tenant: str | None = None, *, when: str | None = None
    ) -> str: ...
    def unsubscribe_workflow_from_reactor(
        self, reactor: str, workflow: str, tenant: str | None = None
    ) -> bool: ...
    def list_reactor_subscriptions(self, tenant: str | None = None) -> list[dict[str, Any]]: ...


class DefaultRunnerConfig:
    """Runner settings; out-of-range values raise ``ConfigurationError``."""

    def __init__(
        self,
        *,
        max_concurrent_tasks: int | None = None,
        scheduler_poll_interval_ms: int | None = None,
        task_timeout_seconds: int | None = None,
        workflow_timeout_seconds: int | None = None,
        db_pool_size: int | None = None,
        enable_recovery: bool | None = None,
        enable_cron_scheduling: bool | None = None,
        cron_poll_interval_seconds: int | None = None,
        cron_max_catchup_executions: int | None = None,
        cron_enable_recovery: bool | None = None,
        cron_recovery_interval_seconds: int | None = None,
        cron_lost_threshold_minutes: int | None = None,
        cron_max_recovery_age_seconds: int | None = None,
        cron_max_recovery_attempts: int | None = None,
    ) -> None: ...
    @staticmethod
    def default() -> DefaultRunnerConfig: ...
    def to_dict(self) -> dict[str, Any]: ...
    max_concurrent_tasks: int
    scheduler_poll_interval_ms: int
    task_timeout_seconds: int
    workflow_timeout_seconds: int | None
    db_pool_size: int
    enable_recovery: bool
    enable_cron_scheduling: bool
    cron_poll_interval_seconds: int
    cron_max_catchup_executions: int
    cron_enable_recovery: bool
    cron_recovery_interval_seconds: int
    cron_lost_threshold_minutes: int
    cron_max_recovery_age_seconds: int
    cron_max_recovery_attempts: int

# ---------------------------------------------------------------------------
# Namespaces
# ---------------------------------------------------------------------------

class TaskNamespace:
    """``tenant_id::package_name::workflow_id::task_id``."""

    def __init__(self, tenant_id: str, package_name: str, workflow_id: str, task_id: str) -> None: ...
    @staticmethod
    def from_string(namespace_str: str) -> TaskNamespace: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def package_name(self) -> str: ...
    @property
    def workflow_id(self) -> str: ...
    @property
    def task_id(self) -> str: ...
    def parent(self) -> TaskNamespace:
        """The workflow's namespace: same parts, empty ``task_id``."""
    def workflow_context(self) -> WorkflowContext: ...
    def is_child_of(self, parent: TaskNamespace | WorkflowContext) -> bool: ...
    def is_sibling_of(self, other: TaskNamespace) -> bool: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class WorkflowContext:
    """A workflow's (tenant, package, workflow) namespace."""

    def __init__(self, tenant_id: str, package_name: str, workflow_id: str) -> None: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def package_name(self) -> str: ...
    @property
    def workflow_id(self) -> str: ...
    def task_namespace(self, task_id: str) -> TaskNamespace: ...
    def resolve_dependency(self, task_name: str) -> TaskNamespace: ...
    def workflow_namespace(self) -> TaskNamespace: ...
    def contains_namespace(self, namespace: TaskNamespace) -> bool: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

# ---------------------------------------------------------------------------
# Retry policies
# ---------------------------------------------------------------------------

class BackoffStrategy:
    @staticmethod
    def fixed() -> BackoffStrategy: ...
    @staticmethod
    def linear(multiplier: float = 1.0) -> BackoffStrategy: ...
    @staticmethod
    def exponential(base: float = 2.0, multiplier: float | None = 1.0) -> BackoffStrategy: ...
    @property
    def kind(self) -> str: ...
    @property
    def base(self) -> float: ...
    @property
    def multiplier(self) -> float: ...

class RetryCondition:
    @staticmethod
    def never() -> RetryCondition: ...
    @staticmethod
    def transient_only() -> RetryCondition: ...
    @staticmethod
    def all_errors() -> RetryCondition: ...
    @staticmethod
    def error_pattern(patterns: Sequence[str]) -> RetryCondition: ...
    @property
    def kind(self) -> str: ...
    @property
    def patterns(self) -> tuple[str, ...]: ...
    def matches(self, error: str) -> bool: ...

class RetryPolicy:
    @staticmethod
    def builder() -> RetryPolicyBuilder: ...
    @staticmethod
    def default() -> RetryPolicy: ...
    def should_retry(self, attempt: int, error_type: str) -> bool: ...
    def calculate_delay(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th failed attempt."""
    @property
    def max_attempts(self) -> int: ...
    @property
    def initial_delay(self) -> float: ...
    @property
    def max_delay(self) -> float: ...
    @property
    def with_jitter(self) -> bool: ...
    @property
    def backoff_strategy(self) -> BackoffStrategy: ...
    @property
    def retry_condition(self) -> RetryCondition: ...

class RetryPolicyBuilder:
    def max_attempts(self, attempts: int) -> RetryPolicyBuilder: ...
    def initial_delay(self, delay_seconds: float) -> RetryPolicyBuilder: ...
    def max_delay(self, delay_seconds: float) -> RetryPolicyBuilder: ...
    def backoff_strategy(self, strategy: BackoffStrategy) -> RetryPolicyBuilder: ...
    def retry_condition(self, condition: RetryCondition) -> RetryPolicyBuilder: ...
    def with_jitter(self, jitter: bool) -> RetryPolicyBuilder: ...
    def build(self) -> RetryPolicy: ...

# ---------------------------------------------------------------------------
# Triggers
# ---------------------------------------------------------------------------

class TriggerResult:
    __hash__: ClassVar[None]  # type: ignore[assignment]
    @staticmethod
    def skip() -> TriggerResult: ...
    @staticmethod
    def fire(context: Context | Mapping[str, Any] | None = None, key: str | None = None) -> TriggerResult:
        """Start the workflow; once per ``key`` (default: the context)."""
    @property
    def key(self) -> str | None: ...
    def is_fire_result(self) -> bool: ...
    def is_skip_result(self) -> bool: ...
    @property
    def context(self) -> Context | None: ...

def trigger(
    *,
    name: str | None = None,
    on: str | None = None,
    poll_interval: str | None = None,
    cron: str | None = None,
    timezone: str | None = None,
    allow_concurrent: bool = False,
) -> Callable[[_F], _F]:
    """Declare a poll function (returning ``TriggerResult`` or ``bool``)
    that starts workflow ``on``: every ``poll_interval`` (``"100ms"``,
    ``"30s"``, ``"2m"``; default 30 s) or on a ``cron`` expression."""

# ---------------------------------------------------------------------------
# Computation graphs
# ---------------------------------------------------------------------------

class ComputationGraphBuilder:
    """Declares a graph of ``@node`` functions.  ``graph`` maps each node to
    ``{}``, ``{"next": n}`` or ``{"routes": {variant: n}}``, optionally with
    ``"inputs": [accumulator, ...]``."""

    def __init__(
        self,
        name: str,
        *,
        graph: Mapping[str, Mapping[str, Any]],
        reactor: type | None = None,
        react: None = None,
    ) -> None: ...
    @property
    def NAME(self) -> str: ...
    @property
    def is_triggered(self) -> bool:
        """Whether a reactor fires it (else a task invokes it)."""
    def execute(self, inputs: Mapping[str, Any]) -> Any: ...
    def __enter__(self) -> ComputationGraphBuilder: ...
    def __exit__(self, *exc: object) -> None: ...

def node(func: _F) -> _F: ...
def reactor(*, name: str, accumulators: Sequence[str], mode: str = "when_any") -> Callable[[_C], _C]:
    """Class decorator; ``mode`` is ``"when_any"`` or ``"when_all"``."""
def passthrough_accumulator(func: _F) -> _F: ...
def stream_accumulator(*, type: str, topic: str, group: str | None = None) -> Callable[[_F], _F]: ...
def polling_accumulator(*, interval: str) -> Callable[[_F], _F]: ...
def batch_accumulator(
    *, flush_interval: str, max_buffer_size: int | None = None
) -> Callable[[_F], _F]: ...
def state_accumulator(*, capacity: int) -> Callable[[_F], _F]: ...

# ---------------------------------------------------------------------------
# Multi-tenant administration (PostgreSQL)
# ---------------------------------------------------------------------------

class DatabaseAdmin:
    def __init__(self, database_url: str) -> None: ...
    def create_tenant(self, config: TenantConfig) -> TenantCredentials: ...
    def remove_tenant(self, schema_name: str, username: str) -> None: ...

class TenantConfig:
    def __init__(self, schema_name: str, username: str, password: str | None = None) -> None: ...
    @property
    def schema_name(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def password(self) -> str:
        """``""`` means: generate a 32-character password at creation."""

class TenantCredentials:
    def __init__(
        self, username: str, password: str, schema_name: str, connection_string: str
    ) -> None: ...
    @property
    def username(self) -> str: ...
    @property
    def password(self) -> str: ...
    @property
    def schema_name(self) -> str: ...
    @property
    def connection_string(self) -> str: ...
