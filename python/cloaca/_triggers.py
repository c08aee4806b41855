"""Triggers: Python functions polled on a schedule that decide whether to
start a workflow.

``@trigger(...)`` validates its arguments, records a
:class:`TriggerDefinition` in this module's registry and returns the
function unchanged.  As in cloaca 0.8.0 it schedules nothing by itself: the
runtime (the server's package loader, or an embedded runner) reads the
registry.  A poll function returns a :class:`TriggerResult` or a bool; the
runtime passes whatever it returned through :func:`normalise_poll_result`.
"""

from __future__ import annotations

import re
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, TypeVar, Union

from ._context import Context
from ._errors import ConfigurationError

__all__ = [
    "add_listener",
    "remove_listener",
    "TriggerResult",
    "TriggerDefinition",
    "trigger",
    "registered_triggers",
    "get_trigger",
    "register_trigger",
    "unregister_trigger",
    "drain_triggers",
    "normalise_poll_result",
    "parse_duration_ms",
    "DEFAULT_POLL_INTERVAL",
]

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_POLL_INTERVAL = "30s"

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
_NUMBER = re.compile(r"\+?[0-9]+\Z")


class TriggerResult:
    """What a poll returns: :meth:`skip` (do nothing this time) or
    :meth:`fire` (start the workflow, optionally with a context)."""

    __slots__ = ("_fire", "_context", "_key")

    def __init__(self, *, fire: bool = False, context: Optional[Context] = None,
                 key: Optional[str] = None) -> None:
        # Use TriggerResult.skip() or TriggerResult.fire(); this is internal.
        self._fire = bool(fire)
        self._context = context if self._fire else None
        self._key = key if self._fire else None

    @staticmethod
    def skip() -> "TriggerResult":
        """Do not start the workflow this time."""
        return TriggerResult(fire=False)

    @staticmethod
    def fire(context: Union[Context, Mapping[str, Any], None] = None,
             key: Optional[str] = None) -> "TriggerResult":
        """Start the workflow, with ``context`` (a :class:`Context` or a dict,
        copied) as its input, or with an empty context if ``None``.

        A trigger starts its workflow once per ``key`` (on any runner of the
        database, restarts included); without one, the context is the key,
        so the same context never fires twice. Give a key (a file name, an
        event id, a time bucket) to say what counts as new.
        """
        if key is not None and not isinstance(key, str):
            raise TypeError(f"fire() key must be a str, not {type(key).__name__}")
        if context is None:
            return TriggerResult(fire=True, key=key)
        if isinstance(context, Context):
            return TriggerResult(fire=True, context=context.__copy__(), key=key)
        if isinstance(context, Mapping):
            return TriggerResult(fire=True, context=Context(context), key=key)
        raise TypeError(f"fire() expects a Context, a dict or None, not {type(context).__name__}")

    @property
    def key(self) -> Optional[str]:
        """What deduplicates this firing (None: the context)."""
        return self._key

    def is_fire_result(self) -> bool:
        return self._fire

    def is_skip_result(self) -> bool:
        return not self._fire

    @property
    def context(self) -> Optional[Context]:
        """A copy of the context a fire result carries, else ``None``."""
        return None if self._context is None else self._context.__copy__()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TriggerResult):
            return (self._fire, self._context) == (other._fire, other._context)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        # The same text as cloaca 0.8.0, which does not print the context.
        if not self._fire:
            return "TriggerResult.Skip"
        return "TriggerResult.Fire(None)" if self._context is None else "TriggerResult.Fire(<context>)"


def normalise_poll_result(value: Any) -> TriggerResult:
    """Turn a poll function's return value into a :class:`TriggerResult`:
    a result as it is, ``True`` fires with no context, ``False`` or ``None``
    skips; anything else raises ``TypeError``."""
    if isinstance(value, TriggerResult):
        return value
    if value is True:
        return TriggerResult.fire()
    if value is False or value is None:
        return TriggerResult.skip()
    raise TypeError(f"a trigger must return a TriggerResult or a bool, got {type(value).__name__}")


def parse_duration_ms(text: str) -> int:
    """Parse a duration such as ``"100ms"``, ``"30s"``, ``"2m"`` or ``"1h"``
    into milliseconds.  The number is a whole, positive count.

    Raises :class:`ConfigurationError` (a ``ValueError``) naming the text.
    """
    if not isinstance(text, str):
        raise TypeError(f"a duration must be a str such as '30s', not {type(text).__name__}")
    value = text.strip()
    unit = "ms" if value.endswith("ms") else value[-1:]
    number = value[: len(value) - len(unit)]
    if not value:
        reason = "empty string"
    elif not number or not unit.isalpha():
        reason = "expected a number followed by a unit (ms, s, m, h)"
    elif unit not in _UNIT_MS:
        reason = f"unknown unit '{unit}', expected ms, s, m or h"
    elif not _NUMBER.match(number):
        reason = f"'{number}' is not a whole number"
    elif int(number) == 0:
        reason = "must be greater than zero"
    else:
        return int(number) * _UNIT_MS[unit]
    raise ConfigurationError(f"Invalid poll_interval '{text}': {reason}")


@dataclass(frozen=True)
class TriggerDefinition:
    """A trigger recorded by :func:`trigger`."""

    name: str
    #: The workflow the trigger starts (the decorator's ``on``).
    workflow: Optional[str]
    poll_interval_ms: int
    cron: Optional[str]
    timezone: Optional[str]
    allow_concurrent: bool
    function: Callable[..., Any]


_registry: Dict[str, TriggerDefinition] = {}
_registry_lock = threading.Lock()


# Weak: a runner nobody holds any more is not kept alive by them.
_listeners: List["weakref.WeakMethod[Callable[[TriggerDefinition], None]]"] = []


def register_trigger(definition: TriggerDefinition) -> None:
    """Record ``definition``, replacing any trigger of the same name, and
    tell every listener (the live runners, which start polling it)."""
    with _registry_lock:
        _registry.pop(definition.name, None)
        _registry[definition.name] = definition
        _listeners[:] = [ref for ref in _listeners if ref() is not None]
        listeners = [ref() for ref in _listeners]
    for listener in listeners:
        if listener is not None:
            listener(definition)


def add_listener(listener: Callable[[TriggerDefinition], None]) -> List[TriggerDefinition]:
    """Calls bound method ``listener`` with every trigger registered from
    now on, for as long as its object lives; returns those registered so
    far."""
    with _registry_lock:
        _listeners.append(weakref.WeakMethod(listener))  # type: ignore[arg-type]
        return list(_registry.values())


def remove_listener(listener: Callable[[TriggerDefinition], None]) -> None:
    with _registry_lock:
        _listeners[:] = [ref for ref in _listeners if ref() not in (None, listener)]


def registered_triggers() -> List[TriggerDefinition]:
    """Every recorded trigger, oldest first."""
    with _registry_lock:
        return list(_registry.values())


def get_trigger(name: str) -> Optional[TriggerDefinition]:
    """The trigger recorded under ``name``, if any."""
    with _registry_lock:
        return _registry.get(name)


def unregister_trigger(name: str) -> bool:
    """Forget the trigger ``name``; whether there was one."""
    with _registry_lock:
        return _registry.pop(name, None) is not None


def drain_triggers() -> List[TriggerDefinition]:
    """Return every recorded trigger and empty the registry (what a package
    loader does once it has taken them over)."""
    with _registry_lock:
        taken = list(_registry.values())
        _registry.clear()
        return taken


def _optional_text(name: str, value: Any) -> Optional[str]:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, not {type(value).__name__}")
    return value


def trigger(
    *,
    name: Optional[str] = None,
    on: Optional[str] = None,
    poll_interval: Optional[str] = None,
    cron: Optional[str] = None,
    timezone: Optional[str] = None,
    allow_concurrent: bool = False,
) -> Callable[[F], F]:
    """Declare a trigger.

    ``name`` defaults to the function's name; ``on`` names the workflow to
    start.  Either poll the function every ``poll_interval`` (a duration
    such as ``"100ms"``, ``"30s"``, ``"2m"``; 30 s by default) or fire on a
    ``cron`` expression (in ``timezone``), which requires ``on``.  With
    ``allow_concurrent`` a new execution may start while the previous one
    still runs.

    Raises :class:`ConfigurationError` (a ``ValueError``) for both ``cron``
    and ``poll_interval``, for ``cron`` without ``on``, and for a bad
    duration.  The decorated function is returned unchanged.
    """
    name = _optional_text("name", name)
    on = _optional_text("on", on)
    cron = _optional_text("cron", cron)
    timezone = _optional_text("timezone", timezone)
    if cron is not None and poll_interval is not None:
        raise ConfigurationError(
            "@cloaca.trigger cannot set both 'cron' and 'poll_interval'; pick one"
        )
    if cron is not None and on is None:
        raise ConfigurationError(
            "@cloaca.trigger(cron=...) requires 'on' (the workflow the cron schedule fires)"
        )
    interval_ms = parse_duration_ms(DEFAULT_POLL_INTERVAL if poll_interval is None else poll_interval)
    from . import _native  # the runtime's rules, so a trigger it would refuse is refused here

    if cron is not None:
        _native.check_cron(cron, timezone or "UTC")

    if interval_ms < _native.MIN_POLL_INTERVAL_MS:
        raise ConfigurationError(
            f"Invalid poll_interval '{poll_interval}': must be at least {_native.MIN_POLL_INTERVAL_MS}ms"
        )
    concurrent = bool(allow_concurrent)

    def decorator(func: F) -> F:
        if not callable(func):
            raise TypeError(f"@trigger decorates a function, not {type(func).__name__}")
        register_trigger(
            TriggerDefinition(
                name=func.__name__ if name is None else name,
                workflow=on,
                poll_interval_ms=interval_ms,
                cron=cron,
                timezone=timezone,
                allow_concurrent=concurrent,
                function=func,
            )
        )
        return func

    return decorator
