"""DatabaseAdmin: tenants on PostgreSQL, each a schema and a login role."""

import uuid

import pytest

import cloaca
from conftest import POSTGRES_URL, postgres_only


@postgres_only()
def test_two_tenants_run_confined_to_their_own_schemas(name):
    admin = cloaca.DatabaseAdmin(POSTGRES_URL)
    suffix = uuid.uuid4().hex[:8]
    acme = admin.create_tenant(cloaca.TenantConfig(f"acme_{suffix}", f"acme_user_{suffix}", ""))
    globex = admin.create_tenant(cloaca.TenantConfig(f"globex_{suffix}", f"globex_user_{suffix}", "s3cret-Pass"))
    try:
        assert len(acme.password) == 32 and acme.password.isalnum()
        assert globex.password == "s3cret-Pass"
        assert acme.password not in repr(acme) and acme.password not in repr(admin)
        assert acme.connection_string.startswith(f"postgres://acme_user_{suffix}:")
        with pytest.raises(cloaca.AdminError, match="already exists"):
            admin.create_tenant(cloaca.TenantConfig(f"other_{suffix}", f"acme_user_{suffix}", "x"))

        with cloaca.WorkflowBuilder(name):

            @cloaca.task()
            def hello(context):
                context.set("hello", context.get("tenant"))
                return context

        with cloaca.DefaultRunner(acme.connection_string) as at_acme, \
                cloaca.DefaultRunner(globex.connection_string) as at_globex:
            mine = at_acme.execute(name, {"tenant": "acme"})
            assert mine.status == "Completed" and mine.final_context.get("hello") == "acme"
            theirs = at_globex.execute(name, {"tenant": "globex"})
            assert theirs.final_context.get("hello") == "globex"
            # Neither sees the other's execution.
            with pytest.raises(cloaca.ExecutionError, match="no execution"):
                at_globex.wait(mine.execution_id, timeout=5)
            with pytest.raises(cloaca.ExecutionError, match="no execution"):
                at_acme.wait(theirs.execution_id, timeout=5)
            assert at_acme.wait(mine.execution_id).status == "Completed"
    finally:
        admin.remove_tenant(f"acme_{suffix}", f"acme_user_{suffix}")
        admin.remove_tenant(f"globex_{suffix}", f"globex_user_{suffix}")
    # The role is gone: its credentials no longer open a runner.
    with pytest.raises(cloaca.RunnerError, match="Failed to create DefaultRunner"):
        cloaca.DefaultRunner(acme.connection_string)


@postgres_only()
def test_with_schema_confines_a_runner(name):
    schema = f"ws_{uuid.uuid4().hex[:8]}"
    with cloaca.WorkflowBuilder(name):

        @cloaca.task()
        def step(context):
            return context

    try:
        with cloaca.DefaultRunner.with_schema(POSTGRES_URL, schema) as runner:
            assert runner.execute(name, {}).status == "Completed"
            assert runner.backend == "postgresql"
    finally:
        cloaca.DatabaseAdmin(POSTGRES_URL).remove_tenant(schema, schema)


def test_refusals_name_what_is_wrong(tmp_path):
    with pytest.raises(RuntimeError, match="postgresql:// URL"):
        cloaca.DatabaseAdmin(f"sqlite://{tmp_path}/x.db")
    with pytest.raises(cloaca.AdminError, match="names no database"):
        cloaca.DatabaseAdmin("postgresql://user@localhost")
    with pytest.raises(ValueError, match="only supported with PostgreSQL"):
        cloaca.DefaultRunner.with_schema(f"sqlite://{tmp_path}/x.db", "s")
    with pytest.raises(ValueError, match="Schema name cannot be empty"):
        cloaca.DefaultRunner.with_schema(POSTGRES_URL, "")
    with pytest.raises(ValueError, match="only alphanumeric characters and underscores"):
        cloaca.DefaultRunner.with_schema(POSTGRES_URL, "bad-name;")
    with pytest.raises(RuntimeError, match="Failed to create tenant"):
        cloaca.DatabaseAdmin("postgresql://postgres@127.0.0.1:1/test").create_tenant(
            cloaca.TenantConfig("t_unreachable", "u_unreachable", "")
        )
    with pytest.raises(RuntimeError, match="Failed to create tenant: invalid schema name"):
        cloaca.DatabaseAdmin(POSTGRES_URL).create_tenant(cloaca.TenantConfig("no spaces", "u", ""))
