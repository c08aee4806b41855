"""Tenant provisioning values for ``DatabaseAdmin`` (PostgreSQL).

A tenant is a PostgreSQL schema plus a role that may use only that schema.
:class:`TenantConfig` asks for one; :class:`TenantCredentials` is what
``DatabaseAdmin.create_tenant`` hands back.  Both mask secrets in their
``repr`` so they can be logged safely.
"""

from __future__ import annotations

import secrets
import string
from typing import Any, Optional

__all__ = ["TenantConfig", "TenantCredentials", "generate_password"]

_PASSWORD_ALPHABET = string.ascii_letters + string.digits
PASSWORD_LENGTH = 32


def generate_password(length: int = PASSWORD_LENGTH) -> str:
    """A random password of ``length`` letters and digits, safe to embed in
    a connection URL without escaping."""
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(length))


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return str.__str__(value)


class TenantConfig:
    """A request for a new tenant.

    ``password`` may be ``None`` or ``""``: ``create_tenant`` then generates
    a 32-character alphanumeric password (see :func:`generate_password`).
    As in cloaca 0.8.0, ``None`` is stored and reported as ``""``.
    """

    __slots__ = ("_schema_name", "_username", "_password")

    def __init__(self, schema_name: str, username: str, password: Optional[str] = None) -> None:
        self._schema_name = _text("schema_name", schema_name)
        self._username = _text("username", username)
        self._password = "" if password is None else _text("password", password)

    @property
    def schema_name(self) -> str:
        return self._schema_name

    @property
    def username(self) -> str:
        return self._username

    @property
    def password(self) -> str:
        """The requested password; ``""`` means "generate one"."""
        return self._password

    def __repr__(self) -> str:
        return (
            f"TenantConfig(schema_name='{self._schema_name}', "
            f"username='{self._username}', password='***')"
        )


class TenantCredentials:
    """What a created tenant connects with.  ``connection_string`` is a
    PostgreSQL URL that embeds the password and selects the tenant's schema."""

    __slots__ = ("_username", "_password", "_schema_name", "_connection_string")

    def __init__(
        self, username: str, password: str, schema_name: str, connection_string: str
    ) -> None:
        self._username = _text("username", username)
        self._password = _text("password", password)
        self._schema_name = _text("schema_name", schema_name)
        self._connection_string = _text("connection_string", connection_string)

    @property
    def username(self) -> str:
        return self._username

    @property
    def password(self) -> str:
        return self._password

    @property
    def schema_name(self) -> str:
        return self._schema_name

    @property
    def connection_string(self) -> str:
        return self._connection_string

    def __repr__(self) -> str:
        return (
            f"TenantCredentials(username='{self._username}', "
            f"schema_name='{self._schema_name}', password='***', connection_string='***')"
        )
