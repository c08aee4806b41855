//! Tenants on PostgreSQL: a schema and a login role owning it.

use cloacina_runtime::TenantId;
use pyo3::prelude::*;

use crate::errors::raise;

fn run<T>(work: impl std::future::Future<Output = T>) -> Result<T, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the async runtime: {error}"))?;
    Ok(runtime.block_on(work))
}

fn tenant_id(py: Python<'_>, what: &str, name: &str, doing: &str) -> PyResult<TenantId> {
    TenantId::new(name).map_err(|error| {
        raise(
            py,
            "AdminError",
            format!("{doing}: invalid {what} `{name}`: {error}"),
        )
    })
}

/// Makes schema `schema` and login role `username` (password `password`)
/// owning it, on the PostgreSQL server at `url`.
#[pyfunction]
pub(crate) fn create_tenant(
    py: Python<'_>,
    url: &str,
    schema: &str,
    username: &str,
    password: &str,
) -> PyResult<()> {
    const DOING: &str = "Failed to create tenant";
    let schema = tenant_id(py, "schema name", schema, DOING)?;
    let username = tenant_id(py, "username", username, DOING)?;
    let url = url.to_owned();
    let password = password.to_owned();
    py.detach(move || {
        run(async {
            // An existing role keeps its password: credentials carrying a
            // new one would not log in.
            if cloacina_database::role_exists(&url, &username).await? {
                return Ok(Err(format!(
                    "role `{username}` already exists; remove that tenant first or choose another username"
                )));
            }
            cloacina_database::provision_tenant_role(&url, &schema, &username, &password)
                .await
                .map(Ok)
        })
        .and_then(|done| done.map_err(|error| cloacina_contract::explain(&error)))
        .and_then(|refused| refused)
    })
    .map_err(|reason| raise(py, "AdminError", format!("{DOING}: {reason}")))
}

/// Drops schema `schema` with everything in it, and role `username`.
#[pyfunction]
pub(crate) fn remove_tenant(
    py: Python<'_>,
    url: &str,
    schema: &str,
    username: &str,
) -> PyResult<()> {
    const DOING: &str = "Failed to remove tenant";
    let schema = tenant_id(py, "schema name", schema, DOING)?;
    let username = tenant_id(py, "username", username, DOING)?;
    let url = url.to_owned();
    py.detach(move || {
        run(async {
            cloacina_database::drop_tenant_data(&url, &schema).await?;
            cloacina_database::drop_role(&url, &username).await
        })
        .and_then(|done| done.map_err(|error| cloacina_contract::explain(&error)))
    })
    .map_err(|reason| raise(py, "AdminError", format!("{DOING}: {reason}")))
}
