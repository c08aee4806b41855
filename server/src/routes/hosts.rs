//! The hosts serving a tenant: each lease row of its database (id,
//! address, version, start, last heartbeat) with the tasks the host runs
//! there and the computation graphs it owns. Every tenant runner of one
//! server carries the server's one host id, so the same host shows in
//! every tenant it serves.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use cloacina_runtime::HostRecord;
use cloacina_runtime::clock::now_ms;
use cloacina_wire::TenantListResponse;
use cloacina_wire::hosts::HostInfo;

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::routes::rfc3339;
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant_id}/hosts",
    operation_id = "list_hosts",
    summary = "The hosts serving the tenant, oldest first",
    tag = "hosts",
    params(("tenant_id" = String, Path, description = "The tenant")),
    responses((status = 200, body = TenantListResponse<HostInfo>)),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(tenant_id): Path<String>,
) -> ApiResult<Json<TenantListResponse<HostInfo>>> {
    let tenant = state.tenant_for(&caller, Role::Read, &tenant_id).await?;
    let hosts = tenant
        .runner()
        .hosts()
        .await
        .map_err(|error| ApiError::internal("listing hosts", error))?;
    let owners = tenant
        .graphs()
        .owners()
        .await
        .map_err(|error| ApiError::internal("listing hosts", error))?;
    let mut owned: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (graph, owner) in owners {
        owned.entry(owner).or_default().push(graph);
    }
    // Read after the rows, so that an age is never taken before its
    // heartbeat on this host's clock.
    let now = now_ms();
    let me = &state.host.identity().id;
    // Oldest first: the order `Runner::hosts` reads them in.
    let items: Vec<HostInfo> = hosts
        .into_iter()
        .map(|host| {
            let mut owned_graphs = owned.remove(&host.id).unwrap_or_default();
            owned_graphs.sort();
            info(host, owned_graphs, now, me)
        })
        .collect();
    Ok(Json(TenantListResponse {
        tenant_id: tenant.tenant().to_string(),
        total: items.len() as u64,
        items,
    }))
}

fn info(host: HostRecord, owned_graphs: Vec<String>, now: i64, me: &str) -> HostInfo {
    HostInfo {
        this_host: host.id == me,
        started_at: rfc3339(host.started_at_ms),
        last_heartbeat: rfc3339(host.heartbeat_at_ms),
        // Another host's clock may run ahead of this one's: a heartbeat
        // "from the future" is a fresh one.
        heartbeat_age_ms: (now - host.heartbeat_at_ms).max(0),
        running_tasks: u64::try_from(host.running_tasks).unwrap_or(0),
        owned_graphs,
        id: host.id,
        address: host.address,
        version: host.version,
    }
}
