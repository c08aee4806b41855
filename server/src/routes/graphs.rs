//! Computation graphs over HTTP: the health routes in the 0.8 shapes, the
//! REST commands (fire, pause, resume, inject) and the firing log. Agents
//! and the server-side compiler are not used here (packages come built).
//!
//! A key sees and drives the graphs of its own tenant; a global or god key
//! sees every tenant's (`?tenant=` narrows the lists) and drives those of
//! `?tenant=` (default `public`). Reading needs the read role; changing
//! state (firing, pausing, injecting) needs write.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use cloacina_graphs::{CommandReply, FiringRecord, GraphCommand, GraphError, ReactorHealth};
use cloacina_host::TenantHost;
use cloacina_wire::graphs::{
    AccumulatorStatus, CompilerStatus, FireRequest, FireResponse, Firing, GraphStatus,
    GraphTopology, GraphTopologyEdge, GraphTopologyNode, InjectRequest, InjectResponse,
    PauseResponse, ReactorStatus,
};
use cloacina_wire::{ErrorBody, ListResponse};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{Caller, KeyRecord, Role};
use crate::error::{ApiError, ApiResult};
use crate::routes::rfc3339;
use crate::state::{AppState, parse_tenant};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct TenantQuery {
    /// For keys of no tenant: the tenant (lists: only its graphs; commands:
    /// default `public`).
    tenant: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct FiresQuery {
    /// For keys of no tenant: the tenant (default `public`).
    tenant: Option<String>,
    /// Newest first, at most this many (default 50, at most 1000).
    limit: Option<u32>,
}

/// A tenant key naming another tenant: 403, as everywhere else.
fn refuse_other_tenant(key: &KeyRecord, asked: Option<&str>) -> ApiResult<()> {
    match asked {
        Some(asked) => crate::auth::Caller {
            key: key.clone(),
            address: None,
        }
        .require_tenant(&parse_tenant(asked)?),
        None => Ok(()),
    }
}

/// The tenants whose graphs `key` sees.
async fn visible_tenants(
    state: &AppState,
    key: &KeyRecord,
    asked: Option<&str>,
) -> ApiResult<Vec<Arc<TenantHost>>> {
    refuse_other_tenant(key, asked)?;
    let names = match (&key.tenant, asked) {
        (Some(own), _) => vec![own.clone()],
        (None, Some(asked)) => vec![parse_tenant(asked)?],
        // Graphs run only in started tenants: no database read needed.
        (None, None) => return Ok(state.host.started_tenants().await),
    };
    let mut tenants = Vec::with_capacity(names.len());
    for name in names {
        match state.host.existing_tenant(&name).await {
            Ok(Some(tenant)) => tenants.push(tenant),
            Ok(None) => {}
            Err(error) => return Err(ApiError::internal("opening a tenant", error)),
        }
    }
    Ok(tenants)
}

/// The tenant `key` drives graphs in: its own, or `asked` (default
/// `public`) for a key of no tenant.
pub(crate) async fn acting_tenant(
    state: &AppState,
    key: &KeyRecord,
    asked: Option<&str>,
) -> ApiResult<Arc<TenantHost>> {
    refuse_other_tenant(key, asked)?;
    let name = match (&key.tenant, asked) {
        (Some(own), _) => own.to_string(),
        (None, Some(asked)) => asked.to_owned(),
        (None, None) => cloacina_runtime::TenantId::public().to_string(),
    };
    state.tenant(&name).await
}

/// A graph error as an HTTP answer; `missing` is the 404 code of the route.
pub(crate) fn graph_error(error: GraphError, missing: &'static str) -> ApiError {
    match error {
        GraphError::UnknownGraph(name) => {
            ApiError::not_found(missing, format!("graph '{name}' not found"))
        }
        GraphError::UnknownAccumulator(name) => ApiError::not_found(
            "accumulator_not_found",
            format!("accumulator '{name}' not found"),
        ),
        GraphError::Paused(name) => ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "reactor_paused",
            format!("reactor '{name}' is paused"),
        ),
        GraphError::NotRunning(_) | GraphError::Fenced(_) | GraphError::OwnerUnreachable { .. } => {
            ApiError {
                retry_after: Some(1),
                ..ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "graph_not_running",
                    error.to_string(),
                )
            }
        }
        GraphError::InvalidInput(message) => ApiError::bad_request("invalid_input", message),
        other => ApiError::internal("running a computation graph", other),
    }
}

pub(crate) fn health_json(health: &ReactorHealth) -> Value {
    serde_json::to_value(health).unwrap_or(Value::Null)
}

fn topology(status: &cloacina_graphs::GraphStatus) -> GraphTopology {
    use cloacina_contract::manifest::{GraphTopology as _, InputSource};
    let graph = &status.declaration;
    let mut edges = Vec::new();
    for node in &graph.nodes {
        for input in &node.inputs {
            let (from, label) = match graph.resolve(input) {
                Some(InputSource::Accumulator(a)) => (a.name.to_string(), None),
                Some(InputSource::Context(key)) => (key.to_string(), None),
                Some(InputSource::Node(id)) => (id.to_string(), None),
                Some(InputSource::Field { node, field }) => {
                    (node.to_string(), Some(field.to_owned()))
                }
                None => continue,
            };
            edges.push(GraphTopologyEdge {
                from,
                to: node.id.to_string(),
                label,
            });
        }
    }
    GraphTopology {
        nodes: graph
            .nodes
            .iter()
            .map(|node| GraphTopologyNode {
                id: node.id.to_string(),
                inputs: node.inputs.iter().map(ToString::to_string).collect(),
            })
            .collect(),
        edges,
    }
}

pub(crate) fn wire_graph(status: &cloacina_graphs::GraphStatus, tenant: &str) -> GraphStatus {
    let declaration = &status.declaration;
    GraphStatus {
        name: status.name.clone(),
        health: health_json(&status.health),
        accumulators: status.accumulators.iter().map(|a| a.name.clone()).collect(),
        paused: status.paused,
        topology: Some(topology(status)),
        reactor: Some(status.name.clone()),
        reaction_mode: Some(declaration.reactor.reaction_mode.as_str().to_owned()),
        input_strategy: Some(declaration.reactor.input_strategy.as_str().to_owned()),
        fires: i64::try_from(status.fires).unwrap_or(i64::MAX),
        last_fired_at: status.last_fired_at_ms.map(rfc3339),
        tenant_id: Some(tenant.to_owned()),
        source_package: Some(status.package.clone()),
        package_version: Some(status.version.clone()),
        pending_events: Some(status.pending_events),
        restarts: Some(status.restarts),
        subscriptions: Some(
            declaration
                .subscriptions
                .iter()
                .map(|s| s.workflow.to_string())
                .collect(),
        ),
    }
}

fn wire_reactor(status: &cloacina_graphs::GraphStatus) -> ReactorStatus {
    let declaration = &status.declaration;
    ReactorStatus {
        name: status.name.clone(),
        health: health_json(&status.health),
        accumulators: declaration
            .criterion_sources()
            .iter()
            .map(ToString::to_string)
            .collect(),
        reaction_mode: Some(declaration.reactor.reaction_mode.as_str().to_owned()),
        input_strategy: Some(declaration.reactor.input_strategy.as_str().to_owned()),
        bound_graphs: vec![status.name.clone()],
        paused: status.paused,
        fires: i64::try_from(status.fires).unwrap_or(i64::MAX),
        last_fired_at: status.last_fired_at_ms.map(rfc3339),
    }
}

pub(crate) fn wire_firing(record: &FiringRecord) -> Firing {
    Firing {
        id: record.id,
        fired_at: rfc3339(record.fired_at_ms),
        ok: record.ok,
        error: record.error.clone(),
        duration_ms: record.duration_us as f64 / 1_000.0,
        inputs: record.inputs.clone(),
        outputs: record.outputs.clone(),
        manual: record.manual,
        first_seq: record.first_seq,
        last_seq: record.last_seq,
    }
}

fn list<T>(items: Vec<T>) -> Json<ListResponse<T>> {
    let total = items.len() as u64;
    Json(ListResponse { items, total })
}

#[utoipa::path(
    get,
    path = "/v1/health/accumulators",
    operation_id = "list_accumulators",
    summary = "Accumulators of the graphs the key sees",
    tag = "graphs",
    params(TenantQuery),
    responses((status = 200, body = ListResponse<AccumulatorStatus>)),
    security(("bearer" = []))
)]
pub async fn accumulators(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<TenantQuery>,
) -> ApiResult<Json<ListResponse<AccumulatorStatus>>> {
    caller.require(Role::Read)?;
    let mut items = Vec::new();
    for tenant in visible_tenants(&state, &caller.key, query.tenant.as_deref()).await? {
        for accumulator in tenant.graphs().accumulators() {
            items.push(AccumulatorStatus {
                name: accumulator.name,
                status: accumulator.status.as_str().to_owned(),
                graph: Some(accumulator.graph),
                kind: Some(accumulator.kind.as_str().to_owned()),
                tenant_id: Some(tenant.tenant().to_string()),
            });
        }
    }
    Ok(list(items))
}

#[utoipa::path(
    get,
    path = "/v1/health/graphs",
    operation_id = "list_graphs",
    summary = "Computation graphs the key sees, with health and counters",
    tag = "graphs",
    params(TenantQuery),
    responses((status = 200, body = ListResponse<GraphStatus>)),
    security(("bearer" = []))
)]
pub async fn graphs(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<TenantQuery>,
) -> ApiResult<Json<ListResponse<GraphStatus>>> {
    caller.require(Role::Read)?;
    let mut items = Vec::new();
    for tenant in visible_tenants(&state, &caller.key, query.tenant.as_deref()).await? {
        let name = tenant.tenant().to_string();
        items.extend(
            tenant
                .graphs()
                .statuses()
                .iter()
                .map(|status| wire_graph(status, &name)),
        );
    }
    Ok(list(items))
}

#[utoipa::path(
    get,
    path = "/v1/health/reactors",
    operation_id = "list_reactors",
    summary = "Reactors (one per graph, named like it)",
    tag = "graphs",
    params(TenantQuery),
    responses((status = 200, body = ListResponse<ReactorStatus>)),
    security(("bearer" = []))
)]
pub async fn reactors(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<TenantQuery>,
) -> ApiResult<Json<ListResponse<ReactorStatus>>> {
    caller.require(Role::Read)?;
    let mut items = Vec::new();
    for tenant in visible_tenants(&state, &caller.key, query.tenant.as_deref()).await? {
        items.extend(tenant.graphs().statuses().iter().map(wire_reactor));
    }
    Ok(list(items))
}

#[utoipa::path(
    get,
    path = "/v1/health/graphs/{name}",
    operation_id = "get_graph",
    summary = "A computation graph",
    tag = "graphs",
    params(("name" = String, Path, description = "Graph name"), TenantQuery),
    responses(
        (status = 200, body = GraphStatus),
        (status = 404, description = "No such graph the key may see: graph_not_found", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn graph(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(query): Query<TenantQuery>,
) -> ApiResult<Json<GraphStatus>> {
    caller.require(Role::Read)?;
    for tenant in visible_tenants(&state, &caller.key, query.tenant.as_deref()).await? {
        if let Some(status) = tenant.graphs().status(&name) {
            return Ok(Json(wire_graph(&status, tenant.tenant().as_str())));
        }
    }
    Err(ApiError::not_found(
        "graph_not_found",
        format!("graph '{name}' not found"),
    ))
}

#[utoipa::path(
    post,
    path = "/v1/health/reactors/{name}/fire",
    operation_id = "fire_reactor",
    summary = "Fire a graph now (force_fire), or with new values (fire_with); answered once committed",
    tag = "graphs",
    params(("name" = String, Path, description = "Graph (reactor) name"), TenantQuery),
    request_body = FireRequest,
    responses(
        (status = 200, body = FireResponse),
        (status = 400, description = "invalid_input: unknown mode, or a source the graph does not have", body = ErrorBody),
        (status = 404, description = "reactor_not_found", body = ErrorBody),
        (status = 409, description = "reactor_paused: a paused reactor does not fire", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn fire(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(query): Query<TenantQuery>,
    Json(request): Json<FireRequest>,
) -> ApiResult<Json<FireResponse>> {
    caller.require(Role::Write)?;
    let tenant = acting_tenant(&state, &caller.key, query.tenant.as_deref()).await?;
    let mode = request.mode.as_deref().unwrap_or("force_fire");
    let (command, injected) = match (mode, request.inputs) {
        ("force_fire", _) => (GraphCommand::ForceFire, Vec::new()),
        ("fire_with", Some(inputs)) if !inputs.is_empty() => {
            let mut names: Vec<String> = inputs.keys().cloned().collect();
            names.sort();
            (GraphCommand::FireWith(inputs), names)
        }
        ("fire_with", _) => {
            return Err(ApiError::bad_request(
                "empty_inputs",
                "fire_with needs `inputs`: every source's new value",
            ));
        }
        (other, _) => {
            return Err(ApiError::bad_request(
                "invalid_input",
                format!("unknown mode `{other}`: force_fire or fire_with"),
            ));
        }
    };
    let reply = tenant
        .graphs()
        .command(&name, command)
        .await
        .map_err(|error| graph_error(error, "reactor_not_found"))?;
    let firing = match reply {
        CommandReply::Fired(firing) => Some(wire_firing(&firing)),
        _ => None,
    };
    Ok(Json(FireResponse {
        reactor: name,
        mode: mode.to_owned(),
        sources_injected: injected,
        firing,
    }))
}

async fn pause_or_resume(
    state: &AppState,
    caller: &Caller,
    name: String,
    tenant: Option<&str>,
    pause: bool,
) -> ApiResult<Json<PauseResponse>> {
    caller.require(Role::Write)?;
    let tenant = acting_tenant(state, &caller.key, tenant).await?;
    let command = if pause {
        GraphCommand::Pause
    } else {
        GraphCommand::Resume
    };
    tenant
        .graphs()
        .command(&name, command)
        .await
        .map_err(|error| graph_error(error, "reactor_not_found"))?;
    Ok(Json(PauseResponse {
        reactor: name,
        paused: pause,
    }))
}

#[utoipa::path(
    post,
    path = "/v1/health/reactors/{name}/pause",
    operation_id = "pause_reactor",
    summary = "Pause a graph: events are still accepted, nothing fires (kept across restarts)",
    tag = "graphs",
    params(("name" = String, Path, description = "Graph (reactor) name"), TenantQuery),
    responses((status = 200, body = PauseResponse), (status = 404, description = "reactor_not_found", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn pause(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(query): Query<TenantQuery>,
) -> ApiResult<Json<PauseResponse>> {
    pause_or_resume(&state, &caller, name, query.tenant.as_deref(), true).await
}

#[utoipa::path(
    post,
    path = "/v1/health/reactors/{name}/resume",
    operation_id = "resume_reactor",
    summary = "Resume a graph; it fires at once if its criterion holds",
    tag = "graphs",
    params(("name" = String, Path, description = "Graph (reactor) name"), TenantQuery),
    responses((status = 200, body = PauseResponse), (status = 404, description = "reactor_not_found", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn resume(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(query): Query<TenantQuery>,
) -> ApiResult<Json<PauseResponse>> {
    pause_or_resume(&state, &caller, name, query.tenant.as_deref(), false).await
}

#[utoipa::path(
    get,
    path = "/v1/health/reactors/{name}/fires",
    operation_id = "list_firings",
    summary = "A graph's firing log, newest first (kept in the database)",
    tag = "graphs",
    params(("name" = String, Path, description = "Graph (reactor) name"), FiresQuery),
    responses((status = 200, body = ListResponse<Firing>), (status = 404, description = "reactor_not_found", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn fires(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(query): Query<FiresQuery>,
) -> ApiResult<Json<ListResponse<Firing>>> {
    caller.require(Role::Read)?;
    let tenant = acting_tenant(&state, &caller.key, query.tenant.as_deref()).await?;
    let limit = query.limit.unwrap_or(50).clamp(1, 1_000);
    let firings = tenant
        .graphs()
        .firings(&name, limit)
        .await
        .map_err(|error| graph_error(error, "reactor_not_found"))?;
    Ok(list(firings.iter().map(wire_firing).collect()))
}

#[utoipa::path(
    post,
    path = "/v1/health/accumulators/{name}/inject",
    operation_id = "inject_event",
    summary = "Push one event to an accumulator; answered once it is durable",
    tag = "graphs",
    params(("name" = String, Path, description = "Accumulator name"), TenantQuery),
    request_body = InjectRequest,
    responses(
        (status = 200, body = InjectResponse),
        (status = 404, description = "accumulator_not_found", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn inject(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(query): Query<TenantQuery>,
    Json(request): Json<InjectRequest>,
) -> ApiResult<Json<InjectResponse>> {
    caller.require(Role::Write)?;
    let tenant = acting_tenant(&state, &caller.key, query.tenant.as_deref()).await?;
    let delivered = tenant
        .graphs()
        .push(&name, request.event)
        .await
        .map_err(|error| graph_error(error, "accumulator_not_found"))?;
    Ok(Json(InjectResponse {
        accumulator: name,
        delivered,
    }))
}

#[utoipa::path(
    get,
    path = "/v1/agents",
    operation_id = "list_agents",
    summary = "Agents (none: graphs run on the hosts)",
    tag = "graphs",
    responses((status = 200, description = "Always empty", body = ListResponse<Object>)),
    security(("bearer" = []))
)]
pub async fn agents(caller: Caller) -> ApiResult<Json<ListResponse<serde_json::Value>>> {
    caller.require(Role::Read)?;
    Ok(list(Vec::new()))
}

#[utoipa::path(
    get,
    path = "/v1/compiler/status",
    operation_id = "compiler_status",
    summary = "The compiler (not used: packages come built)",
    tag = "graphs",
    responses((status = 200, body = CompilerStatus)),
    security(("bearer" = []))
)]
pub async fn compiler(caller: Caller) -> ApiResult<Json<CompilerStatus>> {
    caller.require(Role::Read)?;
    Ok(Json(CompilerStatus {
        status: "not_used".to_owned(),
        pending: 0,
        building: 0,
        last_success_at: None,
        last_failure_at: None,
        seconds_since_heartbeat: None,
    }))
}
