"""Computation graphs declared in Python: ``ComputationGraphBuilder``,
``@node``, the accumulator decorators and ``@reactor``.

A trigger-less graph (no ``reactor``) runs inside a task that names it
with ``@task(invokes=graph)``: entry nodes receive a copy of the task's
context, a routing node returns ``(variant, payload)`` and the node its
route names receives the payload, a ``next`` node receives the return
value, and each terminal node that is reached writes its return value into
the task's context under its own name.
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from . import _native
from ._context import Context
from ._errors import ConfigurationError, TaskError, WorkflowError

_GRAPHS: Dict[str, "ComputationGraphBuilder"] = {}
_OPEN = threading.local()
_KINDS = ("passthrough", "stream", "polling", "batch", "state")


@dataclass
class _Node:
    name: str
    next: Optional[str] = None
    routes: Dict[str, str] = field(default_factory=dict)
    inputs: List[str] = field(default_factory=list)

    @property
    def is_terminal(self) -> bool:
        return self.next is None and not self.routes


def _parse_graph(name: str, graph: Any) -> Dict[str, _Node]:
    if not isinstance(graph, Mapping) or not graph:
        raise ConfigurationError(f"graph '{name}': `graph` must be a non-empty dict of node -> spec")
    nodes: Dict[str, _Node] = {}
    for node_name, spec in graph.items():
        if not isinstance(spec, Mapping):
            raise ConfigurationError(f"graph '{name}': node '{node_name}' needs a dict spec, not {type(spec).__name__}")
        unknown = set(spec) - {"next", "routes", "inputs"}
        if unknown:
            raise ConfigurationError(f"graph '{name}': node '{node_name}' has unknown keys {sorted(unknown)}")
        if "next" in spec and "routes" in spec:
            raise ConfigurationError(f"graph '{name}': node '{node_name}' has both `next` and `routes`")
        routes = dict(spec.get("routes") or {})
        nodes[node_name] = _Node(node_name, spec.get("next"), routes, list(spec.get("inputs") or ()))
    for node in nodes.values():
        for target in ([node.next] if node.next else []) + list(node.routes.values()):
            if target not in nodes:
                raise ConfigurationError(f"graph '{name}': node '{node.name}' leads to unknown node '{target}'")
    return nodes


class ComputationGraphBuilder:
    """Declares a computation graph; in its ``with`` block, ``@node``
    functions give the nodes their code."""

    def __init__(self, name: str, *, graph: Mapping[str, Any], reactor: Any = None, react: Any = None) -> None:
        if react is not None:
            raise ConfigurationError(
                "`react=` was removed: declare the reactor with @cloaca.reactor and pass reactor=<it>"
            )
        if not isinstance(name, str) or not name:
            raise ConfigurationError("a computation graph needs a non-empty name")
        self._name = name
        self._nodes = _parse_graph(name, graph)
        self._reactor = reactor
        self._functions: Dict[str, Callable[..., Any]] = {}
        targets = {t for n in self._nodes.values() for t in ([n.next] if n.next else []) + list(n.routes.values())}
        self._entries = [n for n in self._nodes if n not in targets]
        if not self._entries:
            raise ConfigurationError(f"graph '{name}' has no entry node (every node is some node's target)")

    @property
    def NAME(self) -> str:  # noqa: N802 - cloaca's name
        return self._name

    @property
    def is_triggered(self) -> bool:
        """Whether a reactor fires it (else a task invokes it)."""
        return self._reactor is not None

    def __enter__(self) -> "ComputationGraphBuilder":
        stack = getattr(_OPEN, "stack", None)
        if stack is None:
            stack = _OPEN.stack = []
        stack.append(self)
        return self

    def __exit__(self, kind: Any, value: Any, trace: Any) -> bool:
        _OPEN.stack.pop()
        if kind is not None:
            return False
        missing = sorted(set(self._nodes) - set(self._functions))
        extra = sorted(set(self._functions) - set(self._nodes))
        if missing or extra:
            raise ConfigurationError(
                f"graph '{self._name}': declared nodes and @node functions differ "
                f"(no function for {missing}, undeclared functions {extra})"
            )
        if self.is_triggered:
            # Refused now, by the runtime's own rules, if a runner would
            # refuse it: a bad graph never reaches the registry.
            _native.check_graph(json.dumps(self._declaration([])), [n for n, _ in self._native_tasks()])
        with REGISTRATION:
            _GRAPHS[self._name] = self
        if self.is_triggered:
            _announce(self)
        return False

    # -- reactor-triggered graphs: what the graph runtime runs -------------

    def _declaration(self, subscriptions: Sequence[str]) -> Dict[str, Any]:
        """The graph as the runtime declares it: accumulators from the
        reactor, a node per declared node (a route to a node becomes its
        input ``parent.Variant``; a ``next`` its input ``parent.value``), and
        the subscribed workflows."""
        reactor = self._reactor
        accumulators = []
        for name in reactor.ACCUMULATORS:
            accumulators.append(_accumulator_declaration(self._name, reactor.NAME, name))
        parents: Dict[str, List[str]] = {}
        for spec in self._nodes.values():
            if spec.next is not None:
                parents.setdefault(spec.next, []).append(f"{spec.name}.value")
            for variant, target in spec.routes.items():
                parents.setdefault(target, []).append(f"{spec.name}.{variant}")
        nodes = []
        for spec in self._nodes.values():
            inputs = parents.get(spec.name)
            if inputs is None:
                inputs = spec.inputs or [a["name"] for a in accumulators]
            elif spec.inputs:
                raise ConfigurationError(
                    f"graph '{self._name}': node '{spec.name}' is reached from {inputs} and also declares "
                    f"inputs {spec.inputs}; only entry nodes read accumulators"
                )
            elif len(inputs) > 1:
                raise ConfigurationError(
                    f"graph '{self._name}': node '{spec.name}' is reached from {inputs}; "
                    "in a reactor-triggered graph each node has one way in: give each route its own node"
                )
            nodes.append({"id": spec.name, "inputs": list(inputs)})
        return {
            "name": self._name,
            "accumulators": accumulators,
            "reactor": {"reaction_mode": reactor.MODE, "input_strategy": "latest"},
            "nodes": nodes,
            "subscriptions": [{"workflow": w} for w in subscriptions],
        }

    def _native_tasks(self) -> List[tuple]:
        """(name, runner) for every node and polling accumulator."""
        declaration = self._declaration([])
        tasks = [(n["id"], _node_runner(self._functions[n["id"]], n["inputs"], self._nodes[n["id"]]))
                 for n in declaration["nodes"]]
        for accumulator in declaration["accumulators"]:
            if accumulator["kind"] == "polling":
                tasks.append((accumulator["name"], _poll_runner(ACCUMULATORS[accumulator["name"]].function)))
        return tasks

    def execute(self, inputs: Mapping[str, Any]) -> Dict[str, Any]:
        """Runs the graph once on ``inputs``: returns the reached terminal
        nodes' values by node name."""
        return _run(self, Context(dict(inputs)))

    def __repr__(self) -> str:
        return f"ComputationGraphBuilder(name={self._name!r}, nodes={len(self._nodes)})"


def _plain(value: Any) -> Any:
    return value.to_dict() if isinstance(value, Context) else value


def _node_runner(function: Callable[..., Any], inputs: Sequence[str], spec: "_Node") -> Callable[[str, int], str]:
    """What the graph runtime calls for a node: its inputs' values, in
    order, as arguments. Its output is ``{"value": v}`` (read by a ``next``
    node as ``node.value``; ``None`` skips it), or for a routing node's
    ``(variant, payload)``, ``{variant: payload}`` (read by the node that
    route names as ``node.Variant``)."""

    def run(context_json: str, _attempt: int) -> str:
        context = json.loads(context_json)
        value = function(*[context.get(name) for name in inputs])
        if spec.routes:
            if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)
                    and value[0] in spec.routes):
                raise TaskError(
                    f"routing node '{spec.name}' must return (variant, payload) with a variant of "
                    f"{sorted(spec.routes)}, not {value!r}"
                )
            return json.dumps({value[0]: _plain(value[1])})
        return json.dumps({"value": _plain(value)})

    return run


def plain_outputs(graph: str, outputs: Dict[str, Any]) -> Dict[str, Any]:
    """A firing's node outputs as the nodes returned them: a value, or a
    routing node's ``{variant: payload}``."""
    declared = _GRAPHS.get(graph)
    if declared is None:
        return outputs
    return {
        node: output["value"]
        if node in declared._nodes and not declared._nodes[node].routes and isinstance(output, dict)
        else output
        for node, output in outputs.items()
    }


def _poll_runner(function: Callable[..., Any]) -> Callable[[str, int], str]:
    """A polling accumulator: its function's value (None: nothing new)."""

    def run(_context_json: str, _attempt: int) -> str:
        return json.dumps(_plain(function()))

    return run


_KIND_PARAMETERS = {
    "passthrough": lambda p: {},
    "stream": lambda p: {},
    "polling": lambda p: {"poll_interval_ms": _duration_ms("interval", p["interval"])},
    "batch": lambda p: {
        k: v for k, v in (
            ("flush_interval_ms", _duration_ms("flush_interval", p["flush_interval"])),
            ("max_buffer_size", p.get("max_buffer_size")),
        ) if v is not None
    },
}


def _duration_ms(what: str, value: Any) -> int:
    """A duration given as seconds or as a string such as ``"500ms"``."""
    from ._triggers import parse_duration_ms

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value * 1000)
    if not isinstance(value, str):
        raise ConfigurationError(f"{what} must be seconds or a duration such as '500ms', not {value!r}")
    try:
        return parse_duration_ms(value)
    except ValueError:
        raise ConfigurationError(f"{what} must be a duration such as '500ms' or '2s', not {value!r}") from None


def _accumulator_declaration(graph: str, reactor: str, name: str) -> Dict[str, Any]:
    accumulator = ACCUMULATORS.get(name)
    if accumulator is None:
        raise ConfigurationError(
            f"graph '{graph}': reactor '{reactor}' names accumulator '{name}', which no function declares: "
            "decorate one with @cloaca.passthrough_accumulator (or batch_, polling_, stream_)"
        )
    if accumulator.kind == "state":
        raise ConfigurationError(
            f"graph '{graph}': state accumulator '{name}' needs the node that feeds it, "
            "which a Python graph cannot name yet; use a batch accumulator"
        )
    return {"name": name, "kind": accumulator.kind, **_KIND_PARAMETERS[accumulator.kind](accumulator.parameters)}


def node(function: Callable[..., Any]) -> Callable[..., Any]:
    """Gives the node of the same name, in the enclosing
    ``ComputationGraphBuilder`` block, its code."""
    stack = getattr(_OPEN, "stack", None)
    if not stack:
        raise ConfigurationError("@node must be used inside a `with ComputationGraphBuilder(...)` block")
    stack[-1]._functions[function.__name__] = function
    return function


def _run(graph: ComputationGraphBuilder, context: Context) -> Dict[str, Any]:
    outputs: Dict[str, Any] = {}
    pending: List[tuple] = [(name, Context._from_json_object(context.to_dict())) for name in graph._entries]
    steps = 0
    while pending:
        steps += 1
        if steps > 10_000:
            raise TaskError(f"graph '{graph.NAME}' did not reach its terminals within 10000 node runs")
        name, argument = pending.pop(0)
        spec = graph._nodes[name]
        value = graph._functions[name](argument)
        if spec.routes:
            if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)):
                raise TaskError(f"graph '{graph.NAME}': routing node '{name}' must return (variant, payload)")
            variant, payload = value
            if variant not in spec.routes:
                raise TaskError(
                    f"graph '{graph.NAME}': node '{name}' chose route '{variant}', "
                    f"not one of {sorted(spec.routes)}"
                )
            pending.append((spec.routes[variant], payload))
        elif spec.next is not None:
            pending.append((spec.next, value))
        else:
            outputs[name] = value
    return outputs


def check_invokable(graph: Any) -> None:
    """What ``@task(invokes=...)`` accepts: a registered trigger-less graph."""
    name = getattr(graph, "NAME", None)
    if not isinstance(name, str):
        raise TaskError("invokes= takes a ComputationGraphBuilder (an object with NAME)")
    registered = _GRAPHS.get(name)
    if registered is None:
        raise TaskError(f"graph '{name}' is not registered: define it (its `with` block) before the task")
    if registered.is_triggered:
        raise TaskError(f"graph '{name}' is reactor-triggered; only trigger-less graphs can be invoked")


def invoke(graph: Any, context: Context) -> Context:
    """Runs ``graph`` on ``context`` and writes each reached terminal's
    value into it under the terminal's name; a node's exception fails the
    task."""
    registered = _GRAPHS[graph.NAME]
    for name, value in _run(registered, context).items():
        context.set(name, value.to_dict() if isinstance(value, Context) else value)
    return context


# -- the reactor-triggered graphs and subscriptions live runners run -------

_listeners: List["weakref.WeakMethod[Callable[[ComputationGraphBuilder], None]]"] = []
_generation = itertools.count(1)
#: Held while a graph's declaration is taken and registered, so a later
#: registration (a higher generation) always carries the later state.
REGISTRATION = threading.RLock()


def _announce(graph: "ComputationGraphBuilder") -> None:
    """Tells every live runner; one runner's failure does not keep the
    others from hearing (the first failure is raised after)."""
    with REGISTRATION:
        alive = [ref() for ref in _listeners]
        _listeners[:] = [ref for ref, method in zip(_listeners, alive) if method is not None]
    failures = []
    for method in alive:
        if method is not None:
            try:
                method(graph)
            except Exception as error:  # noqa: BLE001 - raised below, after every runner heard
                failures.append(error)
    if failures:
        raise failures[0]


def listen(method: Callable[["ComputationGraphBuilder"], None]) -> List["ComputationGraphBuilder"]:
    """Calls bound ``method`` with every reactor-triggered graph (and each
    subscription change) from now on; returns those declared so far."""
    _listeners.append(weakref.WeakMethod(method))  # type: ignore[arg-type]
    return [g for g in _GRAPHS.values() if g.is_triggered]


def unlisten(method: Callable[["ComputationGraphBuilder"], None]) -> None:
    _listeners[:] = [ref for ref in _listeners if ref() not in (None, method)]


def next_generation() -> int:
    """A registration number higher than any before in this process."""
    return next(_generation)


@dataclass
class Subscription:
    id: str
    reactor: str
    workflow: str
    tenant: str


SUBSCRIPTIONS: Dict[str, Subscription] = {}


def graph_of_reactor(reactor: str) -> "ComputationGraphBuilder":
    for graph in _GRAPHS.values():
        if graph.is_triggered and graph._reactor.NAME == reactor:
            return graph
    raise ConfigurationError(f"no computation graph is fired by a reactor named '{reactor}'")


def subscriptions_of(graph: "ComputationGraphBuilder", tenant: str) -> List[str]:
    """The workflows subscribed to ``graph``'s reactor in ``tenant``."""
    return sorted({
        s.workflow for s in SUBSCRIPTIONS.values()
        if s.reactor == graph._reactor.NAME and s.tenant == tenant
    })


def subscribe(reactor: str, workflow: str, tenant: str) -> str:
    graph = graph_of_reactor(reactor)
    from ._workflow import REGISTRY

    if workflow not in REGISTRY.workflows:
        raise ConfigurationError(
            f"workflow '{workflow}' is not registered: define it (a WorkflowBuilder block) before subscribing it"
        )
    with REGISTRATION:
        for existing in SUBSCRIPTIONS.values():
            if (existing.reactor, existing.workflow, existing.tenant) == (reactor, workflow, tenant):
                return existing.id
        subscription = Subscription(str(uuid.uuid4()), reactor, workflow, tenant)
        SUBSCRIPTIONS[subscription.id] = subscription
    _announce(graph)
    return subscription.id


def unsubscribe(reactor: str, workflow: str, tenant: str) -> bool:
    with REGISTRATION:
        found = [k for k, s in SUBSCRIPTIONS.items() if (s.reactor, s.workflow, s.tenant) == (reactor, workflow, tenant)]
        for key in found:
            del SUBSCRIPTIONS[key]
    if found:
        _announce(graph_of_reactor(reactor))
    return bool(found)


# -- one graph runtime per database in this process ------------------------
# Two runtimes on one database would each number its events and firings
# from the same checkpoint. Within a process the first live runner of a
# database runs its graphs and the others hand graph calls to it; when it
# stops, the next one takes them over. (Across processes on PostgreSQL,
# the graph runtime's fenced lease picks one process per graph.)

_OWNERS: Dict[Any, Any] = {}
_MEMBERS: Dict[Any, "weakref.WeakSet[Any]"] = {}


def join(database: Any, runner: Any) -> bool:
    """Records ``runner`` on ``database``; whether it runs the graphs."""
    with REGISTRATION:
        _MEMBERS.setdefault(database, weakref.WeakSet()).add(runner)
        owner = _OWNERS.get(database)
        if owner is not None and owner() is not None:
            return False
        _OWNERS[database] = weakref.ref(runner)
        return True


def owner(database: Any) -> Any:
    with REGISTRATION:
        ref = _OWNERS.get(database)
        return ref() if ref is not None else None


def leave(database: Any, runner: Any) -> Any:
    """Forgets ``runner``; the runner that takes its graphs over, if it
    ran them and another is left."""
    with REGISTRATION:
        members = _MEMBERS.get(database)
        if members is not None:
            members.discard(runner)
        ref = _OWNERS.get(database)
        if ref is None or ref() is not runner:
            return None
        successor = next(iter(members), None) if members else None
        if successor is None:
            _OWNERS.pop(database, None)
        else:
            _OWNERS[database] = weakref.ref(successor)
        return successor


# -- accumulators and reactors: declarations -------------------------------


@dataclass
class AccumulatorDefinition:
    name: str
    kind: str
    parameters: Dict[str, Any]
    function: Callable[..., Any]


ACCUMULATORS: Dict[str, AccumulatorDefinition] = {}


def _accumulator(kind: str, **parameters: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        ACCUMULATORS[function.__name__] = AccumulatorDefinition(function.__name__, kind, parameters, function)
        return function

    return register


def passthrough_accumulator(function: Callable[..., Any]) -> Callable[..., Any]:
    """Every event passes through as it is."""
    return _accumulator("passthrough")(function)


def stream_accumulator(*, type: str, topic: str, group: Optional[str] = None) -> Callable[..., Any]:  # noqa: A002
    return _accumulator("stream", type=type, topic=topic, group=group)


def polling_accumulator(*, interval: str) -> Callable[..., Any]:
    return _accumulator("polling", interval=interval)


def batch_accumulator(*, flush_interval: str, max_buffer_size: Optional[int] = None) -> Callable[..., Any]:
    if max_buffer_size is not None and max_buffer_size <= 0:
        raise ConfigurationError(f"max_buffer_size must be positive, not {max_buffer_size}")
    return _accumulator("batch", flush_interval=flush_interval, max_buffer_size=max_buffer_size)


def state_accumulator(*, capacity: int) -> Callable[..., Any]:
    if capacity <= 0:
        raise ConfigurationError(f"capacity must be positive, not {capacity}")
    return _accumulator("state", capacity=capacity)


def reactor(*, name: str, accumulators: Sequence[str], mode: str = "when_any") -> Callable[[type], type]:
    """Declares a reactor over ``accumulators`` firing ``when_any`` or
    ``when_all`` of them has news."""
    if not name:
        raise ConfigurationError("a reactor needs a non-empty name")
    if not accumulators:
        raise ConfigurationError(f"reactor '{name}' needs at least one accumulator")
    if len(set(accumulators)) != len(accumulators):
        raise ConfigurationError(f"reactor '{name}' lists an accumulator twice")
    if mode not in ("when_any", "when_all"):
        raise ConfigurationError(f"reactor '{name}': mode must be when_any or when_all, not {mode!r}")

    def declare(cls: type) -> type:
        cls.NAME = name  # type: ignore[attr-defined]
        cls.ACCUMULATORS = list(accumulators)  # type: ignore[attr-defined]
        cls.MODE = mode  # type: ignore[attr-defined]
        return cls

    return declare


__all__ = [
    "ComputationGraphBuilder", "node", "reactor", "passthrough_accumulator", "stream_accumulator",
    "polling_accumulator", "batch_accumulator", "state_accumulator", "WorkflowError",
]
