"""The :class:`Context`: the JSON-valued, string-keyed map that flows between
tasks.

Every value is checked and normalised when it goes in (tuples become lists,
``Mapping`` and ``str``/``int``/``float`` subclasses become their plain JSON
types) and copied when it comes out, so a context never shares mutable state
with the caller and can always be serialised.  What cannot be represented in
JSON (sets, arbitrary objects, ``NaN``/``inf``, integers outside 64 bits,
non-``str`` dictionary keys) is rejected with :class:`ContextTypeError`,
naming the offending key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Dict, List, Optional

from ._errors import ContextError, ContextKeyError, ContextTypeError

__all__ = ["Context"]

# serde_json (the engine's JSON model) holds integers as i64 or u64.
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


class _NotJson(Exception):
    """Raised inside the normaliser; carries the path to the bad value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: List[Any] = []  # innermost first


def _normalise(value: Any) -> Any:
    """Return a fresh JSON-normalised copy of ``value`` or raise
    :class:`_NotJson`."""
    if value is None or value is True or value is False:
        return value
    kind = type(value)
    if kind is str:
        return value
    if kind is int:
        if _INT_MIN <= value <= _INT_MAX:
            return value
        raise _NotJson(f"integer {value} does not fit in 64 bits")
    if kind is float:
        if math.isfinite(value):
            return value
        raise _NotJson(f"float {value!r} is not a JSON number")
    if kind is dict or isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                if not isinstance(k, str):
                    raise _NotJson(f"dict key {k!r} is a {type(k).__name__}, not a str")
                k = str.__str__(k)
            try:
                out[k] = _normalise(v)
            except _NotJson as e:
                e.path.append(k)
                raise
        return out
    if kind is list or kind is tuple or isinstance(value, (list, tuple)):
        items = []
        for i, v in enumerate(value):
            try:
                items.append(_normalise(v))
            except _NotJson as e:
                e.path.append(i)
                raise
        return items
    # Subclasses of the scalar types (IntEnum, str-based enums, float
    # subclasses) are stored as their plain JSON value.
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return _normalise(int(value))
    if isinstance(value, float):
        return _normalise(float(value))
    raise _NotJson(kind.__name__)


def _copy(value: Any) -> Any:
    """Deep-copy an already normalised JSON value (dicts and lists only)."""
    kind = type(value)
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list:
        return [_copy(v) for v in value]
    return value


def _check_key(key: Any) -> str:
    if type(key) is str:
        return key
    if isinstance(key, str):
        return str.__str__(key)
    raise ContextTypeError(f"context keys must be str, not {type(key).__name__}")


def _json_value(key: str, value: Any) -> Any:
    """Normalise ``value`` for storage under ``key``, or raise
    :class:`ContextTypeError` naming the key (and the nested path)."""
    try:
        return _normalise(value)
    except _NotJson as e:
        where = "".join(f"[{p!r}]" for p in reversed(e.path))
        at = f" (at {where})" if where else ""
        raise ContextTypeError(
            f"value for key {key!r} is not JSON-serialisable: {e.reason}{at}"
        ) from None
    except RecursionError:
        raise ContextTypeError(
            f"value for key {key!r} is not JSON-serialisable: "
            "nested too deeply or self-referencing"
        ) from None


def _parse_int(text: str) -> Any:
    # Like serde_json: an integer beyond 64 bits is read as a float.
    value = int(text)
    return value if _INT_MIN <= value <= _INT_MAX else float(text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class Context:
    """A map from ``str`` keys to JSON values, passed from task to task.

    >>> ctx = Context({"user": "ada", "tags": ("a", "b")})
    >>> ctx["tags"]
    ['a', 'b']
    >>> ctx
    Context({"user":"ada","tags":["a","b"]})

    Values are copied on the way in and on the way out: mutating the list
    returned by :meth:`get` does not change the context.

    A context compares equal to another context with the same contents.  It
    is not hashable and, as in cloaca 0.8.0, not iterable: use
    :meth:`to_dict` to walk its entries.
    """

    __slots__ = ("_data",)

    # Mutable and compared by content.
    __hash__ = None  # type: ignore[assignment]
    # Without this, the legacy sequence protocol would call ctx[0].
    __iter__ = None

    def __init__(self, data: Optional[Mapping[str, Any]] = None) -> None:
        """Create a context, optionally filled from ``data`` (a ``dict``, or
        a ``Context`` to copy)."""
        self._data: Dict[str, Any] = {}
        if data is not None:
            self.update_from_dict(data)

    # -- internal fast paths for the runtime ---------------------------------

    @classmethod
    def _from_json_object(cls, data: Dict[str, Any]) -> "Context":
        """Wrap ``data`` (a dict already holding only JSON values, e.g. from
        ``json.loads``) without checking or copying it; the context takes
        ownership."""
        ctx = cls.__new__(cls)
        ctx._data = data
        return ctx

    def _to_json_value(self) -> Dict[str, Any]:
        """The live underlying dict, not a copy: callers must not mutate it."""
        return self._data

    # -- the 0.8.0 API -------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """Return a copy of the value under ``key``, or ``default`` if the key
        is missing.  A key holding JSON ``null`` returns ``None``."""
        key = _check_key(key)
        if key in self._data:
            return _copy(self._data[key])
        return default

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``, inserting or overwriting."""
        key = _check_key(key)
        self._data[key] = _json_value(key, value)

    def insert(self, key: str, value: Any) -> None:
        """Store ``value`` under a new ``key``.

        Raises :class:`ContextError` (a ``ValueError``) if the key exists.
        """
        key = _check_key(key)
        if key in self._data:
            raise ContextError(f"Key already exists: {key!r}")
        self._data[key] = _json_value(key, value)

    def update(self, key: str, value: Any) -> None:
        """Replace the value under an existing ``key``.

        Raises :class:`ContextKeyError` (a ``KeyError``) if the key is
        missing.
        """
        key = _check_key(key)
        if key not in self._data:
            raise ContextKeyError(f"Key not found: {key!r}")
        self._data[key] = _json_value(key, value)

    def remove(self, key: str) -> Any:
        """Remove ``key`` and return its value, or ``None`` if it was
        missing."""
        return self._data.pop(_check_key(key), None)

    def to_dict(self) -> Dict[str, Any]:
        """Return a deep copy of the contents as a plain ``dict``."""
        return {k: _copy(v) for k, v in self._data.items()}

    def update_from_dict(self, data: Mapping[str, Any]) -> None:
        """Insert or overwrite every entry of ``data``.

        Every entry is checked first, so on error the context is unchanged.
        ``data`` may also be another :class:`Context`.
        """
        if isinstance(data, Context):
            self._data.update(data.to_dict())
            return
        if not isinstance(data, Mapping):
            raise ContextTypeError(
                f"expected a dict of context values, not {type(data).__name__}"
            )
        staged = {}
        for key, value in data.items():
            key = _check_key(key)
            staged[key] = _json_value(key, value)
        self._data.update(staged)

    def to_json(self) -> str:
        """Serialise the context as a compact JSON object."""
        return json.dumps(
            self._data, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )

    @staticmethod
    def from_json(json_str: str) -> "Context":
        """Parse a JSON object into a new context.

        Raises :class:`ContextError` (a ``ValueError``) if the text is not
        valid JSON or not a JSON object.
        """
        if not isinstance(json_str, str):
            raise ContextTypeError(
                f"from_json expects a str, not {type(json_str).__name__}"
            )
        try:
            data = json.loads(
                json_str, parse_int=_parse_int, parse_constant=_reject_constant
            )
        except ValueError as e:  # includes json.JSONDecodeError
            raise ContextError(f"Failed to deserialize from JSON: {e}") from e
        if type(data) is not dict:
            raise ContextError(
                "Failed to deserialize from JSON: expected a JSON object, "
                f"got {type(data).__name__}"
            )
        return Context._from_json_object(data)

    # -- mapping protocol ----------------------------------------------------

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: str) -> bool:
        return _check_key(key) in self._data

    def __getitem__(self, key: str) -> Any:
        """Return a copy of the value under ``key``.

        Raises :class:`ContextKeyError` if the key is missing *or* holds
        ``null`` (as cloaca 0.8.0 does); use :meth:`get` to read nulls.
        """
        key = _check_key(key)
        value = self._data.get(key)
        if value is None:
            raise ContextKeyError(f"Key not found: {key!r}")
        return _copy(value)

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        key = _check_key(key)
        if key not in self._data:
            raise ContextKeyError(f"Key not found: {key!r}")
        del self._data[key]

    # -- value semantics -----------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Context):
            return self._data == other._data
        return NotImplemented

    def __repr__(self) -> str:
        return f"Context({self.to_json()})"

    def __copy__(self) -> "Context":
        return Context._from_json_object(self.to_dict())

    def __deepcopy__(self, memo: Dict[int, Any]) -> "Context":
        return self.__copy__()

    def __reduce__(self) -> Any:
        return (Context, (self._data,))
