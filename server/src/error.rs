//! Every failure as the SDK reads it: a status and `{"error", "code"}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cloacina_registry::Refusal;
use cloacina_wire::{ErrorBody, RefusalKind};

/// How long a client is told to wait when the database is unreachable.
const RETRY_UNAVAILABLE_SECS: u64 = 5;

/// A request that failed, with the status and the machine-readable code
/// the API documents.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
    /// Why a package was not admitted (upload routes).
    pub reason: Option<RefusalKind>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            reason: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// A failure of ours while `doing`: 503 with `Retry-After` when the
    /// database is unreachable or busy (the same request may succeed
    /// shortly), else 500; logged with its causes, answered without them.
    pub fn internal<E>(doing: &str, error: E) -> Self
    where
        E: std::error::Error + 'static,
    {
        let error: &(dyn std::error::Error + 'static) = &error;
        if cloacina_runtime::database::is_unavailable(error) {
            tracing::warn!(error, "database unavailable while {doing}");
            return ApiError::unavailable(format!(
                "the database is unavailable ({doing}); retry shortly"
            ));
        }
        tracing::error!(error, "internal error while {doing}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            format!("internal error while {doing}"),
        )
    }

    /// The same error, telling the client to come back after `wait`
    /// (`Retry-After` in whole seconds, rounded up, at least one).
    pub fn retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
        self
    }

    /// 503 `unavailable` with `Retry-After`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError {
            retry_after: Some(RETRY_UNAVAILABLE_SECS),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
        }
    }
}

/// A package not admitted: 400 for a bad package, 409 for a conflict
/// (code `upload_failed`, as the SDK expects, with the whole reason), 503
/// when the host could not decide now, 500 when it failed (the host's
/// causes logged, not sent); `reason` says which.
impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        let kind = refusal.kind();
        let error = match kind {
            RefusalKind::InvalidPackage | RefusalKind::VerificationFailed => {
                ApiError::bad_request("upload_failed", refusal.explain())
            }
            RefusalKind::Conflict => {
                ApiError::new(StatusCode::CONFLICT, "upload_failed", refusal.explain())
            }
            RefusalKind::Unavailable => {
                tracing::warn!(
                    error = &refusal as &dyn std::error::Error,
                    "cannot admit an upload now"
                );
                ApiError::unavailable(refusal.to_string())
            }
            RefusalKind::Internal | RefusalKind::Unknown => {
                tracing::error!(
                    error = &refusal as &dyn std::error::Error,
                    "cannot admit an upload"
                );
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    refusal.to_string(),
                )
            }
        };
        ApiError {
            reason: Some(kind),
            ..error
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&ErrorBody {
            error: self.message,
            code: self.code.to_owned(),
            reason: self.reason,
        })
        .unwrap_or_default();
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"cloacina\""),
            );
        }
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
