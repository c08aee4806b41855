"""Tasks and workflows: the ``@task`` decorator, ``WorkflowBuilder``,
``Workflow`` and the process-wide registry they fill.

A task is registered when it is decorated, under the namespace
``tenant::package::workflow::task`` of the ``with WorkflowBuilder(...)``
block around it; outside any block it is a *loose* task
(``public::embedded::-::task``) that builders pick up by id with
``add_task`` (the seed's module-level form). Workflows are registered by
name, a later registration replacing an earlier one; every live runner
learns of each registration at once.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
import threading
import time
import traceback
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import _native, _threads
from ._context import Context
from ._errors import TaskError, WorkflowError

LOOSE = "-"
"""The workflow part of a loose task's namespace."""

_DEFAULT_RETRY = dict(
    attempts=3, backoff="exponential", delay_ms=1000, max_delay_ms=60000,
    condition="all", jitter=True,
)
_BACKOFFS = ("fixed", "linear", "exponential")
_CONDITIONS = ("never", "transient", "all")


@dataclass
class TaskDefinition:
    """One decorated function, as registered."""

    namespace: Tuple[str, str, str]
    id: str
    function: Callable[..., Any]
    dependencies: List[str]
    max_attempts: int
    backoff: str
    delay_ms: int
    max_delay_ms: int
    condition: str
    jitter: bool
    timeout_ms: Optional[int]
    on_success: Optional[Callable[..., Any]]
    on_failure: Optional[Callable[..., Any]]
    takes_handle: bool
    invokes: Any = None
    post_invocation: Optional[Callable[..., Any]] = None

    @property
    def qualified_name(self) -> str:
        return "::".join((*self.namespace, self.id))


class _Registry:
    """Tasks by namespace, workflows by name, and the runners to tell."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tasks: Dict[str, TaskDefinition] = {}
        self.workflows: Dict[str, "Workflow"] = {}
        # Weak: a runner nobody holds any more is not kept alive by them.
        self.listeners: List["weakref.WeakMethod[Callable[[Workflow], None]]"] = []
        self.open_blocks = threading.local()

    def stack(self) -> List["WorkflowBuilder"]:
        if not hasattr(self.open_blocks, "stack"):
            self.open_blocks.stack = []
        return self.open_blocks.stack

    def add_task(self, task: TaskDefinition) -> None:
        with self.lock:
            self.tasks[task.qualified_name] = task

    def tasks_in(self, namespace: Tuple[str, str, str]) -> List[TaskDefinition]:
        prefix = "::".join(namespace) + "::"
        with self.lock:
            return [t for name, t in self.tasks.items() if name.startswith(prefix)]

    def find_task(self, namespace: Tuple[str, str, str], task_id: str) -> Optional[TaskDefinition]:
        with self.lock:
            return self.tasks.get("::".join((*namespace, task_id))) or self.tasks.get(
                "::".join((namespace[0], namespace[1], LOOSE, task_id))
            ) or self.tasks.get("::".join(("public", "embedded", LOOSE, task_id)))

    def add_workflow(self, workflow: "Workflow") -> None:
        with self.lock:
            self.workflows[workflow.name] = workflow
            self.listeners = [ref for ref in self.listeners if ref() is not None]
            listeners = [ref() for ref in self.listeners]
        for listener in listeners:
            if listener is not None:
                listener(workflow)

    def listen(self, method: Callable[["Workflow"], None]) -> List["Workflow"]:
        """Calls bound ``method`` with every workflow registered from now on
        (for as long as its object lives); returns those registered so far."""
        with self.lock:
            self.listeners.append(weakref.WeakMethod(method))  # type: ignore[arg-type]
            return list(self.workflows.values())

    def unlisten(self, method: Callable[["Workflow"], None]) -> None:
        with self.lock:
            self.listeners = [ref for ref in self.listeners if ref() not in (None, method)]


REGISTRY = _Registry()


def _dependency_id(index: int, dependency: Any) -> str:
    if isinstance(dependency, str):
        return dependency
    name = getattr(dependency, "__name__", None)
    if isinstance(name, str):
        return name
    raise WorkflowError(
        f"Dependency {index} must be either a string or a function object "
        f"with __name__, not {type(dependency).__name__}"
    )


def _takes_handle(function: Callable[..., Any]) -> bool:
    try:
        parameters = [
            p for p in inspect.signature(function).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return False
    return len(parameters) >= 2 and parameters[1].name in ("handle", "task_handle")


def _choice(what: str, value: Optional[str], allowed: Sequence[str], default: str) -> str:
    if value is None:
        return default
    if value not in allowed:
        raise TaskError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _non_negative(what: str, value: Optional[int], default: Optional[int]) -> Optional[int]:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TaskError(f"{what} must be a non-negative int, not {value!r}")
    return value


def task(
    *,
    id: Optional[str] = None,
    dependencies: Optional[Sequence[Any]] = None,
    retry_attempts: Optional[int] = None,
    retry_backoff: Optional[str] = None,
    retry_delay_ms: Optional[int] = None,
    retry_max_delay_ms: Optional[int] = None,
    retry_condition: Optional[str] = None,
    retry_jitter: Optional[bool] = None,
    timeout_seconds: Optional[float] = None,
    retry_policy: Any = None,
    on_success: Optional[Callable[..., Any]] = None,
    on_failure: Optional[Callable[..., Any]] = None,
    invokes: Any = None,
    post_invocation: Optional[Callable[..., Any]] = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as a task and return it unchanged.

    Inside ``with WorkflowBuilder(...)`` the task joins that workflow;
    outside, it is a loose task that ``WorkflowBuilder.add_task`` picks up
    by id. ``retry_attempts`` counts every attempt (defaults: 3 attempts,
    exponential backoff from 1 s up to 60 s with jitter, every error
    retried). ``retry_policy`` takes a ``RetryPolicy`` instead of the
    ``retry_*`` arguments. The function receives a ``Context`` (and a
    ``TaskHandle`` when its second parameter is named ``handle`` or
    ``task_handle``) and returns a ``Context`` or ``None`` (its input).
    """
    if post_invocation is not None and invokes is None:
        raise TaskError("post_invocation needs invokes=<graph>: it runs after the invoked graph")
    if invokes is not None:
        from ._graphs import check_invokable

        check_invokable(invokes)
    retry = dict(_DEFAULT_RETRY)
    if retry_policy is not None:
        retry.update(_policy_arguments(retry_policy))
    attempts = _non_negative("retry_attempts", retry_attempts, retry["attempts"])
    delay_ms = _non_negative("retry_delay_ms", retry_delay_ms, retry["delay_ms"])
    max_delay_ms = _non_negative("retry_max_delay_ms", retry_max_delay_ms, retry["max_delay_ms"])
    # cloaca 0.8.0 reads an unknown backoff as fixed and an unknown
    # condition as all; a typo silently changing behaviour helps no one.
    backoff = _choice("retry_backoff", retry_backoff, _BACKOFFS, retry["backoff"])
    condition = _choice("retry_condition", retry_condition, _CONDITIONS, retry["condition"])
    jitter = retry["jitter"] if retry_jitter is None else bool(retry_jitter)
    timeout_ms = None
    if timeout_seconds is not None:
        if timeout_seconds <= 0:
            raise TaskError(f"timeout_seconds must be positive, not {timeout_seconds!r}")
        timeout_ms = int(timeout_seconds * 1000)
    for callback, what in ((on_success, "on_success"), (on_failure, "on_failure")):
        if callback is not None and not callable(callback):
            raise TaskError(f"{what} must be callable, not {type(callback).__name__}")
    deps = [_dependency_id(i, d) for i, d in enumerate(dependencies or ())]

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(function):
            raise TaskError("@task decorates a function")
        _native.check_name("task id", id or function.__name__)
        for dep in deps:
            _native.check_name("dependency", dep)
        stack = REGISTRY.stack()
        namespace = stack[-1].namespace if stack else ("public", "embedded", LOOSE)
        REGISTRY.add_task(TaskDefinition(
            namespace=namespace,
            id=id or function.__name__,
            function=function,
            dependencies=deps,
            max_attempts=max(1, attempts or 1),
            backoff=backoff,
            delay_ms=delay_ms or 0,
            max_delay_ms=max_delay_ms or 0,
            condition=condition,
            jitter=jitter,
            timeout_ms=timeout_ms,
            on_success=on_success,
            on_failure=on_failure,
            takes_handle=_takes_handle(function),
            invokes=invokes,
            post_invocation=post_invocation,
        ))
        return function

    return register


def _policy_arguments(policy: Any) -> Dict[str, Any]:
    arguments = policy._to_task_kwargs()
    return dict(
        attempts=arguments["retry_attempts"], backoff=arguments["retry_backoff"],
        delay_ms=arguments["retry_delay_ms"], max_delay_ms=arguments["retry_max_delay_ms"],
        condition=arguments["retry_condition"], jitter=arguments["retry_jitter"],
    )


class TaskHandle:
    """What a task that asks for it (second parameter ``handle``) gets: a
    way to wait for a condition inside the task."""

    def __init__(self) -> None:
        self._consumed = False

    def defer_until(self, condition: Callable[[], bool], poll_interval_ms: int = 1000) -> None:
        """Return once ``condition()`` is true, polling it every
        ``poll_interval_ms``; a condition that raises counts as false. The
        wait sleeps without the GIL, so other Python threads run."""
        if self._consumed:
            raise TaskError("this TaskHandle has been used up: its task has ended")
        interval = max(poll_interval_ms, 1) / 1000
        while True:
            try:
                if condition():
                    return
            except Exception:  # noqa: BLE001 - a raising condition is false
                pass
            time.sleep(interval)

    def is_slot_held(self) -> bool:
        """Whether the task holds a concurrency slot: always, here (the
        runtime keeps the slot for the attempt's whole length)."""
        return not self._consumed


def _call_quietly(callback: Callable[..., Any], *args: Any) -> None:
    try:
        callback(*args)
    except Exception:  # noqa: BLE001 - cloaca: callback errors are reported, ignored
        print(f"cloaca: a task callback raised (ignored):\n{traceback.format_exc()}", file=sys.stderr)


def runner_for(task: TaskDefinition) -> Callable[[str, int], str]:
    """What the runtime calls for one attempt of ``task``: the context as
    JSON text in, the output context as JSON text out. An exception fails
    the attempt (after ``on_failure``)."""

    def run(context_json: str, attempt: int) -> str:
        received = Context._from_json_object(json.loads(context_json))
        working = Context._from_json_object(json.loads(context_json))
        handle = TaskHandle() if task.takes_handle else None
        try:
            returned = task.function(working, handle) if handle else task.function(working)
            if returned is None:
                output = received
            elif isinstance(returned, Context):
                output = returned
            else:
                raise TaskError(
                    f"task '{task.id}' returned {type(returned).__name__}; "
                    "return the Context (or None to pass the input on)"
                )
            if task.invokes is not None:
                from ._graphs import invoke

                output = invoke(task.invokes, output)
                if task.post_invocation is not None:
                    replaced = task.post_invocation(output)
                    if isinstance(replaced, Context):
                        output = replaced
            text = output.to_json()
            if task.on_success is not None and _threads.interruption() is None:
                _call_quietly(task.on_success, task.id, output)
        except _threads.TaskInterrupted:
            if task.on_failure is not None:
                reason = _threads.interruption() or "the task was interrupted"
                _call_quietly(task.on_failure, task.id, _native.failure_text("TaskInterrupted", reason), received)
            raise
        except Exception as error:
            if task.on_failure is not None:
                message = _native.failure_text(type(error).__name__, str(error))
                _call_quietly(task.on_failure, task.id, message, received)
            raise
        finally:
            if handle is not None:
                handle._consumed = True
        return text

    return run


def _version(name: str, tenant: str, description: str, tags: Dict[str, str],
             tasks: Sequence[TaskDefinition]) -> str:
    digest = hashlib.sha256()
    for t in sorted(tasks, key=lambda t: t.id):
        digest.update(f"{t.id}({','.join(sorted(t.dependencies))});".encode())
    digest.update(f"|{name}|{tenant}|{description}|".encode())
    for key in sorted(tags):
        digest.update(f"{key}={tags[key]};".encode())
    return digest.hexdigest()[:16]


class Workflow:
    """A checked DAG of tasks, ready to run by name."""

    def __init__(self, name: str, namespace: Tuple[str, str, str], description: str,
                 tags: Dict[str, str], tasks: Sequence[TaskDefinition]) -> None:
        self._name = name
        self._namespace = namespace
        self._description = description
        self._tags = dict(tags)
        self._tasks = {t.id: t for t in tasks}
        self._levels = _levels(name, self._tasks)
        self._version = _version(name, namespace[0], description, tags, tasks)

    @property
    def name(self) -> str:
        return self._name

    @property
    def description(self) -> str:
        return self._description

    @property
    def version(self) -> str:
        return self._version

    @property
    def tags(self) -> Dict[str, str]:
        return dict(self._tags)

    def _qualified(self, task_id: str) -> str:
        return self._tasks[task_id].qualified_name

    def topological_sort(self) -> List[str]:
        """Every task after its dependencies."""
        return [self._qualified(t) for level in self._levels for t in level]

    def get_execution_levels(self) -> List[List[str]]:
        """Tasks grouped by how many dependency steps precede them."""
        return [[self._qualified(t) for t in level] for level in self._levels]

    def get_roots(self) -> List[str]:
        return [self._qualified(t) for t, d in sorted(self._tasks.items()) if not d.dependencies]

    def get_leaves(self) -> List[str]:
        used = {dep for d in self._tasks.values() for dep in d.dependencies}
        return [self._qualified(t) for t in sorted(self._tasks) if t not in used]

    def validate(self) -> None:
        """Raises WorkflowError if the DAG is empty, cyclic or incomplete."""
        _levels(self._name, self._tasks)

    def _native_tasks(self, default_timeout_ms: Optional[int]) -> List["_NativeTask"]:
        return [_NativeTask.of(t, default_timeout_ms) for t in self._tasks.values()]

    def __repr__(self) -> str:
        return f"Workflow(name={self._name!r}, tasks={len(self._tasks)})"


@dataclass
class _NativeTask:
    """A task as ``cloaca._native.NativeRunner.register`` reads it."""

    id: str
    dependencies: List[str]
    max_attempts: int
    backoff: str
    delay_ms: int
    max_delay_ms: int
    jitter: bool
    condition: str
    timeout_ms: Optional[int]
    run: Callable[[str, int], str] = field(repr=False)

    @classmethod
    def of(cls, task: TaskDefinition, default_timeout_ms: Optional[int]) -> "_NativeTask":
        return cls(
            id=task.id, dependencies=list(task.dependencies), max_attempts=task.max_attempts,
            backoff=task.backoff, delay_ms=task.delay_ms, max_delay_ms=task.max_delay_ms,
            jitter=task.jitter, condition=task.condition,
            timeout_ms=task.timeout_ms if task.timeout_ms is not None else default_timeout_ms,
            run=runner_for(task),
        )


def _levels(name: str, tasks: Dict[str, TaskDefinition]) -> List[List[str]]:
    if not tasks:
        raise WorkflowError(f"Workflow validation failed: workflow '{name}' cannot be empty")
    for task_id, task in sorted(tasks.items()):
        for dep in task.dependencies:
            if dep not in tasks:
                raise WorkflowError(
                    f"Workflow validation failed: task '{task_id}' depends on '{dep}', "
                    f"which is not in workflow '{name}'"
                )
    depth: Dict[str, int] = {}
    visiting: List[str] = []

    def level(task_id: str) -> int:
        if task_id in depth:
            return depth[task_id]
        if task_id in visiting:
            cycle = " -> ".join(visiting[visiting.index(task_id):] + [task_id])
            raise WorkflowError(f"Workflow validation failed: cycle {cycle}")
        visiting.append(task_id)
        deps = tasks[task_id].dependencies
        depth[task_id] = 1 + max((level(d) for d in deps), default=-1)
        visiting.pop()
        return depth[task_id]

    for task_id in sorted(tasks):
        level(task_id)
    levels: List[List[str]] = [[] for _ in range(max(depth.values()) + 1)]
    for task_id in sorted(tasks):
        levels[depth[task_id]].append(task_id)
    return levels


class WorkflowBuilder:
    """Builds a workflow. As a context manager, every task decorated in the
    block joins it, and leaving the block registers it."""

    def __init__(self, name: str, *, tenant: Optional[str] = None,
                 package: Optional[str] = None, workflow: Optional[str] = None) -> None:
        if not isinstance(name, str) or not name:
            raise WorkflowError("a workflow needs a non-empty name")
        _native.check_name("workflow name", name)
        self._name = name
        self.namespace = (tenant or "public", package or "embedded", workflow or name)
        self._description = ""
        self._tags: Dict[str, str] = {}
        self._added: Dict[str, TaskDefinition] = {}

    def description(self, description: str) -> None:
        self._description = description

    def tag(self, key: str, value: str) -> None:
        self._tags[key] = value

    def add_task(self, task: Any) -> None:
        """Adds a registered task, by id or by its function."""
        if isinstance(task, str):
            task_id = task
        elif isinstance(getattr(task, "__name__", None), str):
            task_id = task.__name__
        else:
            raise WorkflowError(
                "Task must be either a string task ID or a function object with __name__ attribute"
            )
        found = REGISTRY.find_task(self.namespace, task_id)
        if found is None:
            raise WorkflowError(
                f"Task '{task_id}' not found in registry. Make sure it was decorated with @task."
            )
        self._added[task_id] = found

    def build(self) -> Workflow:
        """The workflow of the tasks added with ``add_task`` (and their
        dependencies, found the same way)."""
        tasks = dict(self._added)
        pending = list(tasks.values())
        while pending:
            for dep in pending.pop().dependencies:
                if dep not in tasks:
                    found = REGISTRY.find_task(self.namespace, dep)
                    if found is not None:
                        tasks[dep] = found
                        pending.append(found)
        try:
            return Workflow(self._name, self.namespace, self._description, self._tags,
                            list(tasks.values()))
        except WorkflowError as error:
            raise WorkflowError(f"Failed to build workflow: {error}") from None

    def __enter__(self) -> "WorkflowBuilder":
        REGISTRY.stack().append(self)
        return self

    def __exit__(self, kind: Any, value: Any, trace: Any) -> bool:
        stack = REGISTRY.stack()
        if stack and stack[-1] is self:
            stack.pop()
        if kind is not None:
            return False
        workflow = Workflow(self._name, self.namespace, self._description, self._tags,
                            REGISTRY.tasks_in(self.namespace))
        REGISTRY.add_workflow(workflow)
        return False

    def __repr__(self) -> str:
        return f"WorkflowBuilder(name={self._name!r})"


def register_workflow_constructor(name: str, constructor: Callable[[], Workflow]) -> None:
    """Calls ``constructor()`` now and registers the workflow it returns
    under ``name``, replacing any earlier one."""
    try:
        workflow = constructor()
    except Exception as error:
        raise WorkflowError(f"Workflow constructor for '{name}' failed: {error}") from error
    if not isinstance(workflow, Workflow):
        raise WorkflowError(
            f"Workflow constructor for '{name}' must return a Workflow, not {type(workflow).__name__}"
        )
    if workflow.name != name:
        workflow = Workflow(name, workflow._namespace, workflow.description, workflow._tags,
                            list(workflow._tasks.values()))
    REGISTRY.add_workflow(workflow)
