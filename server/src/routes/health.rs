//! Probes and metrics.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use cloacina_wire::graphs::HealthStatus;

use crate::error::ApiError;
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    summary = "Liveness",
    tag = "health",
    responses((status = 200, body = HealthStatus))
)]
pub async fn health() -> Json<HealthStatus> {
    Json(HealthStatus {
        status: "ok".to_owned(),
        reason: None,
        crashed_graphs: None,
    })
}

/// Ready when the main database answers and no computation graph has
/// crashed past its restart budget (unless the server leaves graphs out).
#[utoipa::path(
    get,
    path = "/ready",
    operation_id = "ready",
    summary = "Readiness: the database is reachable and no graph is crashed (see --ready-ignores-graphs)",
    tag = "health",
    responses((status = 200, body = HealthStatus), (status = 503, body = HealthStatus))
)]
pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let public = cloacina_runtime::TenantId::public();
    let reachable = match state.host.existing_tenant(&public).await {
        Ok(Some(tenant)) => sqlx::query("SELECT 1")
            .execute(tenant.runner().database().pool())
            .await
            .is_ok(),
        _ => false,
    };
    if !reachable {
        let not_ready = HealthStatus {
            status: "not ready".to_owned(),
            reason: Some("database unreachable".to_owned()),
            crashed_graphs: None,
        };
        return (StatusCode::SERVICE_UNAVAILABLE, Json(not_ready)).into_response();
    }
    let crashed: Vec<String> = if state.ready_ignores_graphs {
        Vec::new()
    } else {
        state
            .host
            .started_tenants()
            .await
            .iter()
            .flat_map(|tenant| tenant.graphs().crashed())
            .collect()
    };
    if crashed.is_empty() {
        let ready = HealthStatus {
            status: "ready".to_owned(),
            reason: None,
            crashed_graphs: None,
        };
        (StatusCode::OK, Json(ready)).into_response()
    } else {
        let not_ready = HealthStatus {
            status: "not ready".to_owned(),
            reason: Some("crashed computation graphs".to_owned()),
            crashed_graphs: Some(crashed),
        };
        (StatusCode::SERVICE_UNAVAILABLE, Json(not_ready)).into_response()
    }
}

/// Prometheus text; behind a key when the server was started so.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    summary = "Prometheus metrics (authenticated with --metrics-auth)",
    tag = "health",
    responses((status = 200, content_type = "text/plain", body = String))
)]
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
    // Tickets live in the database: an unreadable count is reported as
    // none rather than failing the scrape.
    let tickets = state.tickets.len().await.unwrap_or_else(|error| {
        tracing::warn!(
            error = &error as &dyn std::error::Error,
            "cannot count WebSocket tickets"
        );
        0
    });
    match state.metrics.render(tickets) {
        Ok(body) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response(),
        Err(error) => ApiError::internal("rendering the metrics", error).into_response(),
    }
}
