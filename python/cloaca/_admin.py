"""``DatabaseAdmin``: tenants on PostgreSQL, each a schema with a login
role confined to it."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from . import _native
from ._errors import AdminError
from ._tenants import TenantConfig, TenantCredentials, generate_password


class DatabaseAdmin:
    """Creates and removes tenants on the PostgreSQL server at
    ``database_url`` (connect as a role that may create roles and
    schemas)."""

    def __init__(self, database_url: str) -> None:
        if not isinstance(database_url, str) or not database_url.startswith(("postgres://", "postgresql://")):
            raise AdminError("DatabaseAdmin needs a postgresql:// URL: tenants are PostgreSQL schemas")
        parts = urlsplit(database_url)
        if not parts.hostname:
            raise AdminError(f"cannot read a host from the database URL: {parts.scheme}://…")
        if not parts.path.strip("/"):
            raise AdminError("the database URL names no database: add /<database> after the host")
        self._url = database_url
        self._parts = parts

    def create_tenant(self, config: TenantConfig) -> TenantCredentials:
        """Makes the tenant's schema and login role (with a generated
        password when the config has none) and returns credentials whose
        ``connection_string`` opens a runner confined to the schema."""
        password = config.password or generate_password()
        _native.create_tenant(self._url, config.schema_name, config.username, password)
        host = self._parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"  # IPv6
        netloc = f"{quote(config.username, safe='')}:{quote(password, safe='')}@{host}"
        if self._parts.port:
            netloc += f":{self._parts.port}"
        # The admin URL's other parameters (sslmode...) apply to the tenant too.
        query = [(k, v) for k, v in parse_qsl(self._parts.query, keep_blank_values=True) if k != "options"]
        query.append(("options", f"-csearch_path={config.schema_name}"))
        connection_string = urlunsplit((self._parts.scheme, netloc, self._parts.path, urlencode(query), ""))
        return TenantCredentials(config.username, password, config.schema_name, connection_string)

    def remove_tenant(self, schema_name: str, username: str) -> None:
        """Drops the tenant's schema, everything in it, and its role."""
        _native.remove_tenant(self._url, schema_name, username)

    def __repr__(self) -> str:
        return f"DatabaseAdmin({self._parts.hostname}/{self._parts.path.strip('/')})"
