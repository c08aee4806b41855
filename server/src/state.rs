//! What every handler shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cloacina_contract::Declaration;
use cloacina_host::{Host, TenantHost};
use cloacina_runtime::TenantId;

use crate::auth::{Authenticator, Caller, Role};
use crate::error::ApiError;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::routes::workflows::UploadGate;
use crate::ws::{Deliveries, Sockets, Tickets};

pub struct AppState {
    pub host: Arc<Host>,
    pub auth: Authenticator,
    /// Failed authentications per address, requests per key.
    pub throttle: crate::auth::Throttle,
    /// Every change to keys, tenants and packages.
    pub audit: crate::audit::AuditLog,
    pub tickets: Tickets,
    pub deliveries: Deliveries,
    /// WebSockets open, per key.
    pub sockets: Sockets,
    /// Uploads being received and verified.
    pub uploads: UploadGate,
    pub metrics: Metrics,
    pub require_signatures: bool,
    pub metrics_need_auth: bool,
    pub ready_ignores_graphs: bool,
    /// The web console is served at `/ui/`.
    pub console: bool,
    /// Declarations read from stored archives, by archive SHA-256.
    pub declarations: Mutex<HashMap<String, Arc<Declaration>>>,
    /// Answers about executions that have ended.
    pub ended: crate::ended::EndedExecutions,
    pub limits: Limits,
    /// Becomes true when the server stops: sockets close (1001).
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

impl AppState {
    /// The tenant named in a path, for a caller who needs `role` there:
    /// 403 without the role or the tenant, 404 when it does not exist.
    /// A tenant key learns nothing of other tenants: it gets 403 for any
    /// other name, whether that tenant exists or not.
    pub async fn tenant_for(
        &self,
        caller: &Caller,
        role: Role,
        name: &str,
    ) -> Result<Arc<TenantHost>, ApiError> {
        caller.require(role)?;
        caller.require_tenant(&parse_tenant(name)?)?;
        self.tenant(name).await
    }

    /// How this server admits packages: the host's trust store, and
    /// whether a signature is required.
    pub fn admission(&self) -> cloacina_registry::Admission {
        cloacina_registry::Admission::new(
            self.host.trust().clone(),
            if self.require_signatures {
                cloacina_package::SignaturePolicy::Required
            } else {
                cloacina_package::SignaturePolicy::Optional
            },
        )
    }

    /// A key was revoked: it stops working at once on this server (it
    /// leaves the cache), its unused tickets go, its sockets close.
    pub async fn key_revoked(&self, id: uuid::Uuid) {
        self.auth.forget(id);
        self.tickets.forget_key(id).await;
        self.sockets.revoke(id);
    }

    /// The tenant named in a path, if it exists: 404 otherwise (reading
    /// never creates a tenant).
    pub async fn tenant(&self, name: &str) -> Result<Arc<TenantHost>, ApiError> {
        let tenant = parse_tenant(name)?;
        match self.host.existing_tenant(&tenant).await {
            Ok(Some(found)) => Ok(found),
            Ok(None) => Err(ApiError::not_found(
                "not_found",
                format!("tenant `{tenant}` not found"),
            )),
            Err(error) => Err(ApiError::internal("opening the tenant", error)),
        }
    }
}

/// A tenant name from a path or body: 400 when it is not a valid name.
pub fn parse_tenant(name: &str) -> Result<TenantId, ApiError> {
    TenantId::new(name).map_err(|error| ApiError::bad_request("invalid_request", error.to_string()))
}
