//! API keys and WebSocket tickets.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cloacina_wire::ListResponse;
use cloacina_wire::keys::{
    CreateKeyRequest, KeyCreatedResponse, KeyInfo, KeyRevokedResponse, WsTicketResponse,
};

use crate::audit::Action;
use crate::auth::keys::Revocation;
use crate::auth::{Caller, KeyRecord, NewKey, Role, keys};
use crate::error::{ApiError, ApiResult};
use crate::routes::rfc3339;
use crate::state::AppState;
use crate::ws::{RefusedBecause, TICKET_TTL};
use cloacina_wire::ErrorBody;

fn key_info(key: &KeyRecord) -> KeyInfo {
    KeyInfo {
        id: key.id.to_string(),
        name: key.name.clone(),
        permissions: key.role.as_str().to_owned(),
        tenant_id: key.tenant.as_ref().map(ToString::to_string),
        is_admin: key.is_admin,
        created_at: rfc3339(key.created_at_ms),
        revoked: key.revoked,
    }
}

/// Keys the caller may see: all for a global admin, its tenant's for a
/// tenant admin. Never a hash or a plaintext.
#[utoipa::path(
    get,
    path = "/v1/auth/keys",
    operation_id = "list_keys",
    summary = "List API keys (admin; a tenant admin sees its tenant's)",
    tag = "keys",
    responses((status = 200, body = ListResponse<KeyInfo>)),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> ApiResult<Json<ListResponse<KeyInfo>>> {
    caller.require(Role::Admin)?;
    let scope = if caller.is_god() {
        None
    } else {
        caller.key.tenant.as_ref()
    };
    let keys = state
        .auth
        .store
        .list(scope)
        .await
        .map_err(|error| ApiError::internal("listing API keys", error))?;
    let items: Vec<KeyInfo> = keys.iter().map(key_info).collect();
    Ok(Json(ListResponse {
        total: items.len() as u64,
        items,
    }))
}

/// A key in the caller's own scope (its tenant, or global).
#[utoipa::path(
    post,
    path = "/v1/auth/keys",
    operation_id = "create_key",
    summary = "Create an API key in the caller's scope (admin)",
    tag = "keys",
    request_body = CreateKeyRequest,
    responses((status = 201, body = KeyCreatedResponse)),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Result<Json<CreateKeyRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<KeyCreatedResponse>)> {
    caller.require(Role::Admin)?;
    let Json(body) = body.map_err(json_rejection)?;
    let tenant = caller.key.tenant.clone();
    issue(&state, &caller, body, tenant).await
}

/// A key for one tenant: god mode only.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant_id}/keys",
    operation_id = "create_tenant_key",
    summary = "Create an API key for a tenant (god mode)",
    tag = "keys",
    params(("tenant_id" = String, Path, description = "The tenant")),
    request_body = CreateKeyRequest,
    responses((status = 201, body = KeyCreatedResponse)),
    security(("bearer" = []))
)]
pub async fn create_for_tenant(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    body: Result<Json<CreateKeyRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<KeyCreatedResponse>)> {
    caller.require_god()?;
    let Json(body) = body.map_err(json_rejection)?;
    let tenant = state.tenant(&tenant_id).await?.tenant().clone();
    issue(&state, &caller, body, Some(tenant)).await
}

async fn issue(
    state: &AppState,
    caller: &Caller,
    body: CreateKeyRequest,
    tenant: Option<cloacina_runtime::TenantId>,
) -> ApiResult<(StatusCode, Json<KeyCreatedResponse>)> {
    let name = body.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::bad_request(
            "invalid_request",
            "a key needs a name of 1 to 200 characters",
        ));
    }
    let role: Role = match body.role.as_deref() {
        None => Role::Admin,
        Some(role) => role
            .parse()
            .map_err(|error: String| ApiError::bad_request("invalid_request", error))?,
    };
    let plaintext =
        keys::generate_key().map_err(|error| ApiError::internal("generating a key", error))?;
    let record = state
        .auth
        .store
        .create(
            &plaintext,
            &NewKey {
                name: name.to_owned(),
                role,
                tenant,
                is_admin: false,
            },
        )
        .await
        .map_err(|error| ApiError::internal("creating an API key", error))?;
    tracing::info!(key = %record.id, name = %record.name, role = %record.role, tenant = ?record.tenant, "API key created");
    state
        .audit
        .record(
            caller,
            Action::KeyCreate,
            record
                .tenant
                .as_ref()
                .map(cloacina_runtime::TenantId::as_str),
            &record.id.to_string(),
            Some(serde_json::json!({"name": record.name, "role": record.role.as_str()})),
        )
        .await;
    Ok((
        StatusCode::CREATED,
        Json(KeyCreatedResponse {
            id: record.id.to_string(),
            name: record.name,
            key: plaintext,
            permissions: record.role.as_str().to_owned(),
            tenant_id: record.tenant.map(|t| t.to_string()),
            is_admin: record.is_admin,
            created_at: rfc3339(record.created_at_ms),
        }),
    ))
}

/// Revokes a key; it stops working at once (this key alone leaves the
/// cache, and its unused tickets go).
#[utoipa::path(
    delete,
    path = "/v1/auth/keys/{key_id}",
    operation_id = "revoke_key",
    summary = "Revoke an API key (admin)",
    tag = "keys",
    params(("key_id" = String, Path, description = "The key's id")),
    responses((status = 200, body = KeyRevokedResponse)),
    security(("bearer" = []))
)]
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> ApiResult<Json<KeyRevokedResponse>> {
    caller.require(Role::Admin)?;
    let id: uuid::Uuid = key_id
        .parse()
        .map_err(|_| ApiError::bad_request("invalid_key_id", "invalid key ID format"))?;
    let not_found = || ApiError::not_found("key_not_found", "key not found or already revoked");
    let key = state
        .auth
        .store
        .get(id)
        .await
        .map_err(|error| ApiError::internal("reading an API key", error))?
        .ok_or_else(not_found)?;
    if !caller.is_god() && caller.key.tenant.is_some() && key.tenant != caller.key.tenant {
        return Err(not_found());
    }
    if key.is_admin && !caller.is_god() {
        return Err(ApiError::forbidden(
            "admin_required",
            "only a god-mode key may revoke a god-mode key",
        ));
    }
    match state
        .auth
        .store
        .revoke(id)
        .await
        .map_err(|error| ApiError::internal("revoking an API key", error))?
    {
        Revocation::Revoked => {}
        Revocation::NotFound => return Err(not_found()),
        Revocation::LastGodKey => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "last_god_key",
                "this is the last god-mode key; create another before revoking it",
            ));
        }
    }
    state.key_revoked(id).await;
    tracing::info!(key = %id, "API key revoked");
    state
        .audit
        .record(
            &caller,
            Action::KeyRevoke,
            key.tenant.as_ref().map(cloacina_runtime::TenantId::as_str),
            &id.to_string(),
            Some(serde_json::json!({"name": key.name})),
        )
        .await;
    Ok(Json(KeyRevokedResponse {
        status: "revoked".to_owned(),
        id: id.to_string(),
    }))
}

/// The calling key, as listed: what it may do and where (the console
/// shows only the actions its role allows).
#[utoipa::path(
    get,
    path = "/v1/auth/me",
    operation_id = "whoami",
    summary = "The calling key: its role and tenant",
    tag = "keys",
    responses((status = 200, body = KeyInfo), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn me(caller: Caller) -> Json<KeyInfo> {
    Json(key_info(&caller.key))
}

/// A single-use ticket for a WebSocket upgrade.
#[utoipa::path(
    post,
    path = "/v1/auth/ws-ticket",
    operation_id = "create_ws_ticket",
    summary = "A single-use WebSocket ticket (60 s)",
    tag = "keys",
    responses((status = 200, body = WsTicketResponse), (status = 429, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn ws_ticket(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> ApiResult<Json<WsTicketResponse>> {
    match state.tickets.issue(&caller.key).await {
        Ok(ticket) => Ok(Json(WsTicketResponse {
            ticket,
            expires_in_seconds: TICKET_TTL.as_secs(),
        })),
        Err(crate::ws::TicketError::Refused(refused)) => {
            let message = match refused.reason {
                RefusedBecause::KeyQuota => format!(
                    "this key holds {} unused WebSocket tickets; use or let some expire",
                    state.limits.tickets_per_key
                ),
                RefusedBecause::StoreFull => {
                    "too many unused WebSocket tickets; use or let some expire".to_owned()
                }
            };
            Err(
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_tickets", message)
                    .retry_after(refused.retry_after),
            )
        }
        Err(error) => Err(ApiError::internal("issuing a ticket", error)),
    }
}

/// A body that is not the JSON expected: 400 with the reason.
pub fn json_rejection(rejection: axum::extract::rejection::JsonRejection) -> ApiError {
    let status = rejection.status();
    let code = if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        "unsupported_media_type"
    } else if status == StatusCode::PAYLOAD_TOO_LARGE {
        "payload_too_large"
    } else {
        "invalid_request"
    };
    ApiError::new(status, code, rejection.body_text())
}
