//! Who is calling: Bearer `clk_` keys, validated against the key store
//! through a short cache, and what their role and tenant allow.

mod cache;
pub mod keys;
mod throttle;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use cloacina_runtime::TenantId;

pub use cache::KeyCache;
pub use keys::{KeyRecord, KeyStore, NewKey, Role};
pub use throttle::Throttle;

use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: KeyRecord,
    /// The client address the request came from (for the audit log).
    pub address: Option<std::net::IpAddr>,
}

impl Caller {
    /// God mode: every tenant, tenant management.
    pub fn is_god(&self) -> bool {
        self.key.is_admin
    }

    /// At least `role`, else 403.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.key.role >= role || self.is_god() {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "insufficient_permissions",
                format!("this needs the {role} role; the key has {}", self.key.role),
            ))
        }
    }

    /// May act on `tenant`, else 403.
    pub fn require_tenant(&self, tenant: &TenantId) -> Result<(), ApiError> {
        match &self.key.tenant {
            Some(own) if own != tenant && !self.is_god() => Err(ApiError::forbidden(
                "tenant_access_denied",
                format!("this key belongs to tenant {own}, not {tenant}"),
            )),
            _ => Ok(()),
        }
    }

    /// God mode, else 403.
    pub fn require_god(&self) -> Result<(), ApiError> {
        if self.is_god() {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "admin_required",
                "admin access required (a god-mode key)",
            ))
        }
    }
}

/// Validates keys: cache first, then the store.
#[derive(Debug)]
pub struct Authenticator {
    pub store: KeyStore,
    pub cache: KeyCache,
}

impl Authenticator {
    pub fn new(store: KeyStore) -> Self {
        Authenticator {
            store,
            cache: KeyCache::default(),
        }
    }

    pub async fn validate(&self, plaintext: &str) -> Result<KeyRecord, ApiError> {
        let hash = keys::hash_key(plaintext);
        if let Some(record) = self.cache.get(&hash) {
            return Ok(record);
        }
        match self.store.find_by_hash(&hash).await {
            Ok(Some(record)) => {
                self.cache.insert(hash, record.clone());
                Ok(record)
            }
            Ok(None) => Err(ApiError::unauthorized("invalid or revoked API key")),
            Err(error) => Err(ApiError::internal("authenticating", error)),
        }
    }

    /// Revoked: the key stops working at once on this server.
    pub fn forget(&self, id: uuid::Uuid) {
        self.cache.evict(id);
    }
}

/// The Bearer token of a request, if it has one (the scheme is matched
/// without regard to case, as RFC 9110 says).
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)
            .ok_or_else(|| ApiError::unauthorized("missing or malformed Authorization header"))?;
        under_throttle(state, parts, state.auth.validate(token)).await
    }
}

/// Runs an authentication `attempt` (a key or a ticket) under the
/// throttles: refused at once while the client's address has spent its
/// failures, counted against it when refused, and the key's request rate
/// checked when it passes. Every way in takes this path; the caller it
/// returns carries the client's address.
pub(crate) async fn under_throttle(
    state: &AppState,
    parts: &Parts,
    attempt: impl std::future::Future<Output = Result<KeyRecord, ApiError>>,
) -> Result<Caller, ApiError> {
    let address = client_address(parts);
    if let Some(address) = address {
        state.throttle.check_address(address)?;
    }
    let key = match attempt.await {
        Ok(key) => key,
        Err(error) if error.status == axum::http::StatusCode::UNAUTHORIZED => {
            return Err(match address {
                Some(address) => state.throttle.failed(address, error),
                None => error,
            });
        }
        Err(error) => return Err(error),
    };
    state.throttle.check_key(key.id)?;
    Ok(Caller { key, address })
}

/// The client address of a request, as the accept loop recorded it.
fn client_address(parts: &Parts) -> Option<std::net::IpAddr> {
    parts
        .extensions
        .get::<crate::listener::ClientAddress>()
        .map(|client| client.0.ip())
}
