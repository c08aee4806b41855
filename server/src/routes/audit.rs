//! The audit log over HTTP: god-mode keys read every change to keys,
//! tenants and packages, newest first.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use cloacina_wire::ListResponse;
use cloacina_wire::audit::AuditEntry;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::routes::Page;
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/v1/audit",
    operation_id = "list_audit",
    summary = "Changes to keys, tenants and packages: who, what, when, from where (god mode)",
    tag = "audit",
    params(("limit" = Option<i64>, Query, description = "Page size"), ("offset" = Option<i64>, Query, description = "Items to skip")),
    responses((status = 200, body = ListResponse<AuditEntry>)),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    page: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<ListResponse<AuditEntry>>> {
    caller.require_god()?;
    let Query(page) = page
        .map_err(|rejection| ApiError::bad_request("invalid_pagination", rejection.body_text()))?;
    let (limit, offset) = page.checked(100)?;
    let (items, total) = state
        .audit
        .list(limit, offset)
        .await
        .map_err(|error| ApiError::internal("reading the audit log", error))?;
    Ok(Json(ListResponse { items, total }))
}
