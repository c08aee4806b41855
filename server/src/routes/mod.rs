//! The routes, their body limits, and the layers every request passes:
//! request id, timeout, metrics, JSON 404/405.

mod audit;
pub mod executions;
pub(crate) mod graphs;
mod health;
mod hosts;
mod keys;
pub mod openapi;
mod tenants;
mod triggers;
pub mod workflows;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, Version, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tracing::Instrument as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::state::AppState;

/// Bodies of everything but uploads.
const SMALL_BODY: usize = 1 << 20;
/// A request that takes longer is answered 503.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// An upload (receiving a package of up to the upload limit over a slow
/// link, then verifying it) may take this long.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// Every route with its OpenAPI operation: the router and the document
/// come from this one table. Uploads may carry `upload_body_limit` bytes,
/// other requests [`SMALL_BODY`].
pub(crate) fn api(upload_body_limit: usize) -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(health::metrics))
        .routes(routes!(openapi::document))
        .routes(routes!(keys::list, keys::create))
        .routes(routes!(keys::revoke))
        .routes(routes!(keys::ws_ticket))
        .routes(routes!(keys::me))
        .routes(routes!(audit::list))
        .routes(routes!(tenants::list, tenants::create))
        .routes(routes!(tenants::remove))
        .routes(routes!(keys::create_for_tenant))
        .routes(routes!(workflows::get))
        .routes(routes!(executions::execute))
        .routes(routes!(workflows::delete))
        .routes(routes!(executions::list))
        .routes(routes!(executions::get))
        .routes(routes!(executions::cancel))
        .routes(routes!(executions::events))
        .routes(routes!(executions::tasks))
        .routes(routes!(hosts::list))
        .routes(routes!(triggers::list))
        .routes(routes!(triggers::get))
        .routes(routes!(graphs::accumulators))
        .routes(routes!(graphs::graphs))
        .routes(routes!(graphs::graph))
        .routes(routes!(graphs::reactors))
        .routes(routes!(graphs::fire))
        .routes(routes!(graphs::pause))
        .routes(routes!(graphs::resume))
        .routes(routes!(graphs::fires))
        .routes(routes!(graphs::inject))
        .routes(routes!(graphs::agents))
        .routes(routes!(graphs::compiler))
        .routes(routes!(crate::ws::delivery::delivery))
        .routes(routes!(crate::ws::graphs::accumulator_socket))
        .routes(routes!(crate::ws::graphs::reactor_socket))
        .layer(DefaultBodyLimit::max(SMALL_BODY))
        .merge(
            // Uploads: their own body limit.
            OpenApiRouter::new()
                .routes(routes!(workflows::upload, workflows::list))
                .layer(DefaultBodyLimit::max(upload_body_limit)),
        )
}

pub fn router(state: Arc<AppState>) -> Router {
    let (mut api, _) = api(state.uploads.body_limit()).split_for_parts();
    if state.console {
        api = api.merge(crate::console::router());
    }
    api.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "not found")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

/// Request id (kept from `x-request-id` or made), timeout, a log line and
/// the latency metric per route template.
async fn observe(State(state): State<Arc<AppState>>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    // RFC 9112 §3.2: one Host header, and HTTP/1.1 must send it.
    let hosts = request.headers().get_all(header::HOST).iter().count();
    if hosts > 1 || (hosts == 0 && request.version() == Version::HTTP_11) {
        return ApiError::bad_request("invalid_request", "a request needs exactly one Host header")
            .into_response();
    }
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty() && value.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        request.headers_mut().insert("x-request-id", value);
    }
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let is_websocket = route.starts_with("/v1/ws/");
    let carries_body = carries_body(request.headers());
    // Every log line of the handler carries the request id.
    let span = tracing::info_span!("request", request_id = %request_id);
    let response = if is_websocket {
        next.run(request).instrument(span).await
    } else {
        let limit =
            if method == axum::http::Method::POST && route == "/v1/tenants/{tenant_id}/workflows" {
                UPLOAD_TIMEOUT
            } else {
                REQUEST_TIMEOUT
            };
        match tokio::time::timeout(limit, next.run(request).instrument(span)).await {
            Ok(response) => response,
            Err(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!("the request took longer than {}s", limit.as_secs()),
            )
            .into_response(),
        }
    };
    let status = response.status();
    let took = started.elapsed();
    state
        .metrics
        .observe_request(method.as_str(), &route, status.as_u16(), took);
    if status.is_server_error() {
        tracing::warn!(request_id = %request_id, %method, %route, status = status.as_u16(), ?took, "request failed");
    } else {
        tracing::debug!(request_id = %request_id, %method, %route, status = status.as_u16(), ?took, "request");
    }
    let mut response = as_json_error(response).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    // A refused request's body may be unread (a 413 is decided from the
    // Content-Length): the connection cannot carry another request, so
    // the client is told, instead of reusing it and finding it closed.
    if carries_body && (status.is_client_error() || status.is_server_error()) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Whether a request announces a body (a length above zero, or chunks).
fn carries_body(headers: &axum::http::HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .is_some_and(|length| length > 0)
}

/// axum's own rejections (a path that does not decode, a bad query
/// string, ...) are plain text; every error of this API is the JSON body
/// the SDK reads, so they are rewritten here, in one place.
async fn as_json_error(response: Response) -> Response {
    let status = response.status();
    let is_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/plain"));
    if !status.is_client_error() || !is_text {
        return response;
    }
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::NOT_FOUND => "not_found",
        _ => "invalid_request",
    };
    let (parts, body) = response.into_parts();
    let message = match axum::body::to_bytes(body, 64 << 10).await {
        Ok(body) => String::from_utf8_lossy(&body).into_owned(),
        Err(_) => status
            .canonical_reason()
            .unwrap_or("bad request")
            .to_owned(),
    };
    let mut json = ApiError::new(status, code, message).into_response();
    // The rejection's other headers (Allow, Retry-After...) still hold.
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            json.headers_mut().insert(name.clone(), value.clone());
        }
    }
    json
}

/// `limit` / `offset` query parameters, checked.
#[derive(Debug, Deserialize)]
pub struct Page {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

pub const MAX_PAGE: i64 = 1000;

impl Page {
    pub fn checked(&self, default: i64) -> Result<(i64, i64), ApiError> {
        let limit = self.limit.unwrap_or(default);
        let offset = self.offset.unwrap_or(0);
        if !(1..=MAX_PAGE).contains(&limit) || offset < 0 {
            return Err(ApiError::bad_request(
                "invalid_pagination",
                format!("limit must be 1..={MAX_PAGE} and offset >= 0"),
            ));
        }
        Ok((limit, offset))
    }
}

/// Milliseconds since the epoch as RFC 3339.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|at| at.to_rfc3339())
        .unwrap_or_default()
}
