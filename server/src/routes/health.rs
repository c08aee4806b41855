//! Probes and metrics.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

pub async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the main database answers.
pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let public = cloacina_runtime::TenantId::public();
    let reachable = match state.host.existing_tenant(&public).await {
        Ok(Some(tenant)) => sqlx::query("SELECT 1")
            .execute(tenant.runner().database().pool())
            .await
            .is_ok(),
        _ => false,
    };
    if reachable {
        (StatusCode::OK, Json(json!({"status": "ready"}))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "reason": "database unreachable"})),
        )
            .into_response()
    }
}

/// Prometheus text; behind a key when the server was started so.
pub async fn metrics(State(state): State<Arc<AppState>>, request: Request) -> Response {
    if state.metrics_need_auth {
        let (mut parts, _) = request.into_parts();
        if let Err(error) =
            <crate::auth::Caller as axum::extract::FromRequestParts<_>>::from_request_parts(
                &mut parts, &state,
            )
            .await
        {
            return error.into_response();
        }
    }
    let tickets = i64::try_from(state.tickets.len()).unwrap_or(i64::MAX);
    let mut body = state.metrics.render(&[(
        "cloacina_ws_tickets",
        "Unexpired WebSocket tickets held",
        tickets,
    )]);
    body.push_str(&crate::metrics::render_host(state.host.stats()));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
