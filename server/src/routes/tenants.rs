//! Tenants: god mode only. A tenant is a PostgreSQL schema (with a login
//! role) or a SQLite file; removing one revokes its keys, drains its
//! runtime and drops its data.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cloacina_wire::ListResponse;
use cloacina_wire::tenants::{
    CreateTenantRequest, TenantCreatedResponse, TenantRemovedResponse, TenantSummary,
};

use crate::audit::Action;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::routes::keys::json_rejection;
use crate::state::{AppState, parse_tenant};

#[utoipa::path(
    get,
    path = "/v1/tenants",
    operation_id = "list_tenants",
    summary = "List tenants (god mode)",
    tag = "tenants",
    responses((status = 200, body = ListResponse<TenantSummary>)),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> ApiResult<Json<ListResponse<TenantSummary>>> {
    caller.require_god()?;
    let tenants = state
        .host
        .tenants()
        .await
        .map_err(|error| ApiError::internal("listing tenants", error))?;
    Ok(Json(ListResponse {
        total: tenants.len() as u64,
        items: tenants
            .iter()
            .map(|tenant| TenantSummary {
                name: tenant.to_string(),
            })
            .collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/v1/tenants",
    operation_id = "create_tenant",
    summary = "Create a tenant (god mode)",
    tag = "tenants",
    request_body = CreateTenantRequest,
    responses((status = 201, body = TenantCreatedResponse)),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Result<Json<CreateTenantRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<TenantCreatedResponse>)> {
    caller.require_god()?;
    let Json(body) = body.map_err(json_rejection)?;
    let name = body
        .name
        .or(body.schema_name)
        .ok_or_else(|| ApiError::bad_request("invalid_request", "a tenant needs a name"))?;
    let tenant = parse_tenant(&name)?;
    let username = parse_tenant(body.username.as_deref().unwrap_or(&name))?;
    let password = match body.password.filter(|p| !p.is_empty()) {
        Some(password) => password,
        None => generated_password()
            .map_err(|error| ApiError::internal("generating a password", error))?,
    };
    let created = state
        .host
        .create_tenant(&tenant, &username, &password)
        .await
        .map_err(|error| {
            if cloacina_runtime::database::is_unavailable(&error) {
                return ApiError::internal("creating the tenant", error);
            }
            ApiError::bad_request(
                "tenant_creation_failed",
                format!(
                    "cannot create the tenant: {}",
                    cloacina_contract::explain(&error)
                ),
            )
        })?;
    if !created {
        return Err(ApiError::bad_request(
            "tenant_creation_failed",
            format!("tenant `{tenant}` already exists"),
        ));
    }
    tracing::info!(%tenant, "tenant created");
    state
        .audit
        .record(
            &caller,
            Action::TenantCreate,
            Some(tenant.as_str()),
            tenant.as_str(),
            None,
        )
        .await;
    Ok((
        StatusCode::CREATED,
        Json(TenantCreatedResponse {
            name: tenant.to_string(),
            schema_name: tenant.to_string(),
            username: username.to_string(),
            description: body.description,
        }),
    ))
}

#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant_id}",
    operation_id = "remove_tenant",
    summary = "Remove a tenant and its data (god mode)",
    tag = "tenants",
    params(("tenant_id" = String, Path, description = "The tenant")),
    responses((status = 200, body = TenantRemovedResponse)),
    security(("bearer" = []))
)]
pub async fn remove(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<TenantRemovedResponse>> {
    caller.require_god()?;
    let tenant = parse_tenant(&name)?;
    if tenant.is_public() {
        return Err(ApiError::bad_request(
            "tenant_removal_failed",
            "the public tenant cannot be removed",
        ));
    }
    if state
        .host
        .existing_tenant(&tenant)
        .await
        .map_err(|error| ApiError::internal("reading tenants", error))?
        .is_none()
    {
        return Err(ApiError::not_found(
            "not_found",
            format!("tenant `{tenant}` not found"),
        ));
    }
    // Keys first: nothing new reaches the tenant while it drains.
    let revoked = state
        .auth
        .store
        .revoke_tenant(&tenant)
        .await
        .map_err(|error| ApiError::internal("revoking the tenant's keys", error))?;
    for id in &revoked {
        state.key_revoked(*id).await;
    }
    let removed = state.host.remove_tenant(&tenant).await.map_err(|error| {
        if cloacina_runtime::database::is_unavailable(&error) {
            return ApiError::internal("removing the tenant", error);
        }
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "tenant_removal_failed",
            format!(
                "cannot remove the tenant: {}",
                cloacina_contract::explain(&error)
            ),
        )
    })?;
    state.deliveries.forget_tenant(&tenant);
    state.ended.forget_tenant(&tenant);
    state
        .audit
        .record(
            &caller,
            Action::TenantRemove,
            Some(tenant.as_str()),
            tenant.as_str(),
            Some(serde_json::json!({"revoked_keys": revoked.len()})),
        )
        .await;
    Ok(Json(TenantRemovedResponse {
        status: "removed".to_owned(),
        schema_name: tenant.to_string(),
        revoked_keys: revoked.len() as u64,
        runner_evicted: removed,
        db_cache_evicted: removed,
    }))
}

/// 32 characters from a 62-letter alphabet (about 190 bits).
fn generated_password() -> Result<String, getrandom::Error> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect())
}
