"""``DefaultRunnerConfig``: the tunable settings of a ``DefaultRunner``.

Every setting is a keyword argument of the constructor (``None`` keeps the
default) and a property with a validating setter.  A value out of range
raises :class:`ConfigurationError` (a ``ValueError``) with the message
``"Invalid configuration: ..."``; a value of the wrong type raises
``TypeError``.  A failed assignment leaves the old value in place.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from ._errors import ConfigurationError

__all__ = ["DefaultRunnerConfig"]

_Check = Callable[[str, Any], Any]


def _int_in(minimum: int, maximum: Optional[int] = None, *, optional: bool = False) -> _Check:
    """A check for an int in ``[minimum, maximum]`` (or ``None`` if
    ``optional``)."""

    def check(name: str, value: Any) -> Any:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        if value < minimum:
            bound = "> 0" if minimum == 1 else f">= {minimum}"
            raise ConfigurationError(f"Invalid configuration: {name} must be {bound}, got {value}")
        if maximum is not None and value > maximum:
            raise ConfigurationError(
                f"Invalid configuration: {name} must be <= {maximum}, got {value}"
            )
        return int(value)

    return check


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return value


class _Setting:
    """A validated property backed by the instance's ``_values`` dict."""

    def __init__(self, default: Any, check: _Check, doc: str) -> None:
        self.default = default
        self.check = check
        self.__doc__ = doc
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: Optional[type] = None) -> Any:
        if obj is None:
            return self
        return obj._values[self.name]

    def __set__(self, obj: Any, value: Any) -> None:
        obj._values[self.name] = self.check(self.name, value)


_U32 = 2**32 - 1
_I32 = 2**31 - 1


class DefaultRunnerConfig:
    """Settings for a ``DefaultRunner``; pass it to
    ``DefaultRunner.with_config(url, config)``.

    Every cloaca 0.8.0 setting is accepted and checked. The runtime here
    reads ``max_concurrent_tasks``, ``task_timeout_seconds`` (the timeout of
    tasks that set none), ``workflow_timeout_seconds`` (how long
    ``execute`` waits), ``enable_cron_scheduling`` and
    ``cron_lost_threshold_minutes`` (for the cron statistics). The others
    describe machinery it does not have: it starts ready tasks when they
    become ready (no scheduler poll), always recovers interrupted work,
    sizes its own connection pool, and fires each cron occurrence from the
    schedule itself (no cron poll, no separate recovery pass).

    >>> config = DefaultRunnerConfig(max_concurrent_tasks=8)
    >>> config.scheduler_poll_interval_ms = 50
    >>> config
    DefaultRunnerConfig(max_concurrent_tasks=8, enable_cron_scheduling=true, db_pool_size=10)
    """

    __slots__ = ("_values",)

    max_concurrent_tasks = _Setting(4, _int_in(1), "Tasks run at the same time (> 0).")
    scheduler_poll_interval_ms = _Setting(
        100, _int_in(10), "How often the scheduler looks for ready tasks, in ms (>= 10)."
    )
    task_timeout_seconds = _Setting(300, _int_in(1), "Time limit of one task attempt, in s.")
    workflow_timeout_seconds = _Setting(
        3600,
        _int_in(1, optional=True),
        "Time limit of a whole execution, in s; None means no limit.",
    )
    db_pool_size = _Setting(10, _int_in(1, _U32), "Database connections in the pool (> 0).")
    enable_recovery = _Setting(True, _flag, "Recover executions orphaned by a crash.")
    enable_cron_scheduling = _Setting(True, _flag, "Run the cron scheduler.")
    cron_poll_interval_seconds = _Setting(
        30, _int_in(1), "How often cron schedules are checked, in s."
    )
    cron_max_catchup_executions = _Setting(
        100, _int_in(0, 1000), "Missed cron runs caught up at most (0..1000)."
    )
    cron_enable_recovery = _Setting(True, _flag, "Recover lost cron executions.")
    cron_recovery_interval_seconds = _Setting(
        300, _int_in(1), "How often lost cron executions are looked for, in s."
    )
    cron_lost_threshold_minutes = _Setting(
        10, _int_in(1, _I32), "Minutes after which a cron execution counts as lost."
    )
    cron_max_recovery_age_seconds = _Setting(
        86400, _int_in(1), "Oldest lost cron execution still recovered, in s."
    )
    cron_max_recovery_attempts = _Setting(
        3, _int_in(0), "Recovery attempts per lost cron execution (>= 0)."
    )

    def __init__(
        self,
        *,
        max_concurrent_tasks: Optional[int] = None,
        scheduler_poll_interval_ms: Optional[int] = None,
        task_timeout_seconds: Optional[int] = None,
        workflow_timeout_seconds: Optional[int] = None,
        db_pool_size: Optional[int] = None,
        enable_recovery: Optional[bool] = None,
        enable_cron_scheduling: Optional[bool] = None,
        cron_poll_interval_seconds: Optional[int] = None,
        cron_max_catchup_executions: Optional[int] = None,
        cron_enable_recovery: Optional[bool] = None,
        cron_recovery_interval_seconds: Optional[int] = None,
        cron_lost_threshold_minutes: Optional[int] = None,
        cron_max_recovery_age_seconds: Optional[int] = None,
        cron_max_recovery_attempts: Optional[int] = None,
    ) -> None:
        given = locals()  # the arguments above, by name
        self._values: Dict[str, Any] = {}
        for name, setting in _SETTINGS.items():
            value = given[name]
            self._values[name] = setting.default if value is None else setting.check(name, value)

    @staticmethod
    def default() -> "DefaultRunnerConfig":
        """A configuration with every default."""
        return DefaultRunnerConfig()

    def to_dict(self) -> Dict[str, Any]:
        """Every setting by name."""
        return dict(self._values)

    def __repr__(self) -> str:
        cron = "true" if self.enable_cron_scheduling else "false"
        return (
            f"DefaultRunnerConfig(max_concurrent_tasks={self.max_concurrent_tasks}, "
            f"enable_cron_scheduling={cron}, db_pool_size={self.db_pool_size})"
        )


_SETTINGS: Dict[str, _Setting] = {
    k: v for k, v in vars(DefaultRunnerConfig).items() if isinstance(v, _Setting)
}
