"""Exception hierarchy of ``cloaca``.

cloaca 0.8.0 raised only built-in exceptions (``ValueError``, ``KeyError``,
``TypeError``, ``RuntimeError``).  Every class here also derives from the
built-in that 0.8.0 raised in the same situation, so code written against
0.8.0 (``except ValueError:``) keeps working while new code can catch
:class:`CloacaError` or a narrower class.
"""

from __future__ import annotations

__all__ = [
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
]


class CloacaError(Exception):
    """Base class of every error raised by ``cloaca`` itself."""


class ConfigurationError(CloacaError, ValueError):
    """An invalid setting: a runner configuration value, a trigger's
    schedule, a retry policy parameter."""


class WorkflowError(CloacaError, ValueError):
    """A bad workflow definition: an empty workflow, a cycle, a missing
    dependency, a failed validation."""


class TaskError(CloacaError, ValueError):
    """A bad task definition, such as an invalid ``@task`` argument or an
    unknown task id."""


class ContextError(CloacaError, ValueError):
    """A :class:`~cloaca.Context` operation failed, such as inserting a key
    that already exists or parsing invalid JSON."""


class ContextKeyError(ContextError, KeyError):
    """A context key is missing (or, for ``ctx[key]``, holds ``null``)."""

    def __str__(self) -> str:
        # KeyError.__str__ repr-quotes a single argument ("'Key not found'");
        # show the plain message like every other exception.
        return Exception.__str__(self)


class ContextTypeError(ContextError, TypeError):
    """A key is not a ``str``, or a value cannot be represented as JSON."""


class RunnerError(CloacaError, RuntimeError):
    """A runner could not be created or its services could not start."""


class ExecutionError(CloacaError, ValueError):
    """``execute`` could not run a workflow to completion: the workflow is
    unknown, scheduling failed, or the workflow timed out.

    A task that fails does not raise; it yields a result whose status is
    ``"Failed"``.
    """


class ScheduleError(CloacaError, ValueError):
    """A cron schedule or trigger call failed: "<what>: <cause>"."""


class GraphError(CloacaError, ValueError):
    """A computation graph call failed: an unknown graph or accumulator, a
    paused reactor, an event that is not JSON."""


class AdminError(CloacaError, RuntimeError):
    """A database administration operation (tenant creation or removal)
    failed."""
