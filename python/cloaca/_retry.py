"""Retry policies: how often a failed task is tried again, and how long to
wait in between.

These are value objects, as in cloaca 0.8.0: :class:`RetryPolicy` answers
"should attempt *n* be retried?" and "how long after attempt *n*?".  The
``@task`` decorator takes the same settings as plain keyword arguments;
:meth:`RetryPolicy._to_task_kwargs` converts one form into the other.

Delays follow the engine (cloacina's ``RetryPolicy::calculate_delay``):
whole milliseconds, capped at ``max_delay``, then optionally jittered by a
factor drawn uniformly from [0.75, 1.25].
"""

from __future__ import annotations

import math
import random
from decimal import Decimal
from typing import Any, Dict, Iterable, Optional, Tuple

from . import _native
from ._errors import ConfigurationError

__all__ = [
    "BackoffStrategy",
    "RetryCondition",
    "RetryPolicy",
    "RetryPolicyBuilder",
    "TRANSIENT_PATTERNS",
    "is_transient_error",
]

#: Case-insensitive substrings that mark an error as transient (the
#: runtime's list: both decide by the same words).
TRANSIENT_PATTERNS: Tuple[str, ...] = tuple(_native.TRANSIENT_WORDS)

#: Full jitter, as the runtime applies it: a delay drawn between zero and
#: the computed one.
JITTER_RANGE: Tuple[float, float] = (0.0, 1.0)


def is_transient_error(error: str) -> bool:
    """Whether an error type or message looks transient (a timeout, a
    connection problem, an overloaded service...)."""
    return bool(_native.is_transient_error("", error))


def _jitter_factor() -> float:
    # A module-level function so that tests can replace it.
    return random.uniform(*JITTER_RANGE)


def _fmt_f64(value: float) -> str:
    """Format a float the way Rust's ``Display`` does: ``1``, ``0.5``,
    ``0.0001`` (never an exponent)."""
    if value.is_integer():
        return str(int(value))
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def _number(name: str, value: Any, *, minimum: float, inclusive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    number = float(value)
    ok = math.isfinite(number) and (number >= minimum if inclusive else number > minimum)
    if not ok:
        bound = f">= {_fmt_f64(minimum)}" if inclusive else f"> {_fmt_f64(minimum)}"
        raise ConfigurationError(f"Invalid configuration: {name} must be {bound}, got {number!r}")
    return number


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ConfigurationError(f"Invalid configuration: {name} must be >= 0, got {value}")
    return int(value)


def _millis(seconds: float) -> int:
    # Whole milliseconds, immune to 0.29 * 1000 == 289.99999999999997.
    return math.floor(round(seconds * 1000.0, 6))


class BackoffStrategy:
    """How the delay grows from one retry to the next.

    Build one with :meth:`fixed`, :meth:`linear` or :meth:`exponential`.
    """

    __slots__ = ("_kind", "_base", "_multiplier")

    def __init__(self, kind: str, base: float = 2.0, multiplier: float = 1.0) -> None:
        if kind not in ("fixed", "linear", "exponential"):
            raise ConfigurationError(f"Invalid configuration: unknown backoff strategy {kind!r}")
        self._kind = kind
        self._base = _number("base", base, minimum=0.0, inclusive=False)
        self._multiplier = _number("multiplier", multiplier, minimum=0.0)

    @staticmethod
    def fixed() -> "BackoffStrategy":
        """The same delay (``initial_delay``) before every retry."""
        return BackoffStrategy("fixed")

    @staticmethod
    def linear(multiplier: float = 1.0) -> "BackoffStrategy":
        """``initial_delay * n * multiplier`` after the n-th attempt."""
        return BackoffStrategy("linear", multiplier=multiplier)

    @staticmethod
    def exponential(base: float = 2.0, multiplier: Optional[float] = 1.0) -> "BackoffStrategy":
        """``initial_delay * multiplier * base ** (n - 1)`` after the n-th
        attempt."""
        return BackoffStrategy(
            "exponential", base=base, multiplier=1.0 if multiplier is None else multiplier
        )

    @property
    def kind(self) -> str:
        """``"fixed"``, ``"linear"`` or ``"exponential"``."""
        return self._kind

    @property
    def base(self) -> float:
        """The exponential base (meaningful for ``"exponential"`` only)."""
        return self._base

    @property
    def multiplier(self) -> float:
        """The multiplier (meaningless for ``"fixed"``)."""
        return self._multiplier

    def _delay_seconds(self, initial_delay: float, attempt: int) -> float:
        """Uncapped, un-jittered delay after attempt ``attempt``."""
        if self._kind == "fixed":
            return initial_delay
        initial_ms = _millis(initial_delay)
        if self._kind == "linear":
            ms = initial_ms * attempt * self._multiplier
        else:
            try:
                ms = initial_ms * self._multiplier * self._base ** (attempt - 1)
            except OverflowError:
                ms = math.inf
        if not ms > 0:  # negative attempt numbers, 0 * inf
            return 0.0
        if math.isinf(ms):
            return math.inf
        return math.floor(ms) / 1000.0

    def _key(self) -> Tuple[str, float, float]:
        if self._kind == "fixed":
            return (self._kind, 0.0, 0.0)
        if self._kind == "linear":
            return (self._kind, 0.0, self._multiplier)
        return (self._kind, self._base, self._multiplier)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BackoffStrategy):
            return self._key() == other._key()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        if self._kind == "fixed":
            return "BackoffStrategy.Fixed"
        if self._kind == "linear":
            return f"BackoffStrategy.Linear(multiplier={_fmt_f64(self._multiplier)})"
        return (
            f"BackoffStrategy.Exponential(base={_fmt_f64(self._base)}, "
            f"multiplier={_fmt_f64(self._multiplier)})"
        )


class RetryCondition:
    """Which errors are worth retrying.

    Build one with :meth:`never`, :meth:`transient_only`, :meth:`all_errors`
    or :meth:`error_pattern`.
    """

    __slots__ = ("_kind", "_patterns")

    def __init__(self, kind: str, patterns: Iterable[str] = ()) -> None:
        if kind not in ("never", "transient", "all", "pattern"):
            raise ConfigurationError(f"Invalid configuration: unknown retry condition {kind!r}")
        self._kind = kind
        self._patterns: Tuple[str, ...] = tuple(patterns)

    @staticmethod
    def never() -> "RetryCondition":
        """Never retry."""
        return RetryCondition("never")

    @staticmethod
    def transient_only() -> "RetryCondition":
        """Retry errors that look transient (see :data:`TRANSIENT_PATTERNS`)."""
        return RetryCondition("transient")

    @staticmethod
    def all_errors() -> "RetryCondition":
        """Retry every error."""
        return RetryCondition("all")

    @staticmethod
    def error_pattern(patterns: Iterable[str]) -> "RetryCondition":
        """Retry errors whose text contains one of ``patterns``
        (case-insensitive)."""
        if isinstance(patterns, str):
            raise TypeError("error_pattern expects a list of str, not a str")
        patterns = list(patterns)
        for p in patterns:
            if not isinstance(p, str):
                raise TypeError(f"error patterns must be str, not {type(p).__name__}")
        return RetryCondition("pattern", patterns)

    @property
    def kind(self) -> str:
        """``"never"``, ``"transient"``, ``"all"`` or ``"pattern"``."""
        return self._kind

    @property
    def patterns(self) -> Tuple[str, ...]:
        """The patterns of an :meth:`error_pattern` condition (else empty)."""
        return self._patterns

    def matches(self, error: str) -> bool:
        """Whether an error with this type name or message should be
        retried."""
        if self._kind == "all":
            return True
        if self._kind == "never":
            return False
        if self._kind == "transient":
            return is_transient_error(error)
        text = error.lower()
        return any(p.lower() in text for p in self._patterns)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RetryCondition):
            return (self._kind, self._patterns) == (other._kind, other._patterns)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self._kind, self._patterns))

    def __repr__(self) -> str:
        names = {"never": "Never", "transient": "TransientOnly", "all": "AllErrors"}
        if self._kind in names:
            return f"RetryCondition.{names[self._kind]}"
        quoted = ", ".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"'
                           for p in self._patterns)
        return f"RetryCondition.ErrorPattern(patterns=[{quoted}])"


class RetryPolicy:
    """How many times a task is attempted and how long to wait between
    attempts.

    ``RetryPolicy.default()`` is the engine default: 3 attempts in total,
    exponential backoff (base 2) from 1 s capped at 60 s, jitter on, every
    error retried.  Use :meth:`builder` to change any of these.
    """

    __slots__ = (
        "_max_attempts",
        "_backoff",
        "_initial_delay",
        "_max_delay",
        "_condition",
        "_jitter",
    )

    def __init__(
        self,
        *,
        max_attempts: int = 3,
        backoff_strategy: Optional[BackoffStrategy] = None,
        initial_delay: float = 1.0,
        max_delay: float = 60.0,
        retry_condition: Optional[RetryCondition] = None,
        with_jitter: bool = True,
    ) -> None:
        self._max_attempts = _count("max_attempts", max_attempts)
        self._backoff = _strategy(backoff_strategy or BackoffStrategy.exponential())
        self._initial_delay = _number("initial_delay", initial_delay, minimum=0.0)
        self._max_delay = _number("max_delay", max_delay, minimum=0.0)
        self._condition = _condition(retry_condition or RetryCondition.all_errors())
        self._jitter = bool(with_jitter)

    @staticmethod
    def builder() -> "RetryPolicyBuilder":
        """A builder starting from the defaults."""
        return RetryPolicyBuilder()

    @staticmethod
    def default() -> "RetryPolicy":
        """The default policy (see the class docstring)."""
        return RetryPolicy()

    @property
    def max_attempts(self) -> int:
        """Total number of attempts, the first one included."""
        return self._max_attempts

    @property
    def initial_delay(self) -> float:
        """The first delay, in seconds."""
        return self._initial_delay

    @property
    def max_delay(self) -> float:
        """The cap on any delay (before jitter), in seconds."""
        return self._max_delay

    @property
    def with_jitter(self) -> bool:
        """Whether delays are multiplied by a random factor in [0.75, 1.25]."""
        return self._jitter

    @property
    def backoff_strategy(self) -> BackoffStrategy:
        return self._backoff

    @property
    def retry_condition(self) -> RetryCondition:
        return self._condition

    def should_retry(self, attempt: int, error_type: str) -> bool:
        """Whether to try again after attempt number ``attempt`` (1-based)
        failed with ``error_type`` (an exception type name or message).

        True while ``attempt < max_attempts`` and the retry condition matches.
        """
        return attempt < self._max_attempts and self._condition.matches(error_type)

    def calculate_delay(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th failed attempt (1-based).

        fixed: ``initial_delay``; linear: ``initial_delay * n * multiplier``;
        exponential: ``initial_delay * multiplier * base ** (n - 1)``; then
        capped at ``max_delay``, then jittered if :attr:`with_jitter`.
        """
        if isinstance(attempt, bool) or not isinstance(attempt, int):
            raise TypeError(f"attempt must be an int, not {type(attempt).__name__}")
        delay = min(self._backoff._delay_seconds(self._initial_delay, attempt), self._max_delay)
        if self._jitter:
            delay = math.floor(_millis(delay) * _jitter_factor()) / 1000.0
        return delay

    def _to_task_kwargs(self) -> Dict[str, Any]:
        """This policy as ``@task`` keyword arguments (``@task(retry_policy=...)``).

        The runtime backs off linearly by x1 or exponentially by base 2 x1
        and retries all, transient or no errors; a policy it cannot follow
        exactly is refused rather than run differently.
        """
        backoff = self._backoff
        if (backoff.kind == "linear" and backoff.multiplier != 1.0) or (
            backoff.kind == "exponential" and (backoff.base != 2.0 or backoff.multiplier != 1.0)
        ):
            raise ConfigurationError(
                f"Invalid configuration: tasks back off linearly x1 or exponentially base 2 x1, not {backoff!r}"
            )
        if self._condition.kind not in ("never", "transient", "all"):
            raise ConfigurationError(
                "Invalid configuration: tasks retry all, transient or no errors; "
                f"{self._condition!r} cannot be applied to a task"
            )
        condition = self._condition.kind
        return {
            "retry_attempts": self._max_attempts,
            "retry_backoff": self._backoff.kind,
            "retry_delay_ms": _millis(self._initial_delay),
            "retry_max_delay_ms": _millis(self._max_delay),
            "retry_condition": condition,
            "retry_jitter": self._jitter,
        }

    def _key(self) -> Tuple[Any, ...]:
        return (
            self._max_attempts,
            self._backoff,
            self._initial_delay,
            self._max_delay,
            self._condition,
            self._jitter,
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RetryPolicy):
            return self._key() == other._key()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"RetryPolicy(max_attempts={self._max_attempts}, "
            f"initial_delay={_fmt_f64(self._initial_delay)}s, "
            f"max_delay={_fmt_f64(self._max_delay)}s, "
            f"jitter={'true' if self._jitter else 'false'})"
        )


def _strategy(value: Any) -> BackoffStrategy:
    if not isinstance(value, BackoffStrategy):
        raise TypeError(f"expected a BackoffStrategy, not {type(value).__name__}")
    return value


def _condition(value: Any) -> RetryCondition:
    if not isinstance(value, RetryCondition):
        raise TypeError(f"expected a RetryCondition, not {type(value).__name__}")
    return value


class RetryPolicyBuilder:
    """Builds a :class:`RetryPolicy`; every method returns a new builder, so
    calls chain and a partly configured builder can be reused.

    >>> policy = (RetryPolicy.builder().max_attempts(5).initial_delay(0.5)
    ...           .backoff_strategy(BackoffStrategy.linear()).build())
    """

    __slots__ = ("_settings",)

    def __init__(self) -> None:
        self._settings: Dict[str, Any] = {}

    def _with(self, **setting: Any) -> "RetryPolicyBuilder":
        builder = RetryPolicyBuilder()
        builder._settings = {**self._settings, **setting}
        return builder

    def max_attempts(self, attempts: int) -> "RetryPolicyBuilder":
        """Total number of attempts, the first one included."""
        return self._with(max_attempts=_count("max_attempts", attempts))

    def initial_delay(self, delay_seconds: float) -> "RetryPolicyBuilder":
        """The first delay, in seconds."""
        return self._with(initial_delay=_number("initial_delay", delay_seconds, minimum=0.0))

    def max_delay(self, delay_seconds: float) -> "RetryPolicyBuilder":
        """The cap on any delay, in seconds."""
        return self._with(max_delay=_number("max_delay", delay_seconds, minimum=0.0))

    def backoff_strategy(self, strategy: BackoffStrategy) -> "RetryPolicyBuilder":
        return self._with(backoff_strategy=_strategy(strategy))

    def retry_condition(self, condition: RetryCondition) -> "RetryPolicyBuilder":
        return self._with(retry_condition=_condition(condition))

    def with_jitter(self, jitter: bool) -> "RetryPolicyBuilder":
        return self._with(with_jitter=bool(jitter))

    def build(self) -> RetryPolicy:
        """The policy: the defaults, overridden by every setting made."""
        return RetryPolicy(**self._settings)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._settings.items())
        return f"RetryPolicyBuilder({inner})"
