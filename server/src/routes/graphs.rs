//! Computation-graph health, agents and the compiler. Computation graphs
//! are not run by this host yet: the lists are empty and names are 404.
//! Agents and a server-side compiler are not used (packages are built by
//! `cloacinactl pack`): empty list, status `not_used`.

use axum::Json;
use axum::extract::Path;
use cloacina_wire::ListResponse;
use cloacina_wire::graphs::CompilerStatus;

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use cloacina_wire::ErrorBody;

/// No items: this server runs none of these yet.
fn empty() -> Json<ListResponse<serde_json::Value>> {
    Json(ListResponse {
        items: Vec::new(),
        total: 0,
    })
}

#[utoipa::path(
    get,
    path = "/v1/health/accumulators",
    operation_id = "list_accumulators",
    summary = "Accumulators (none yet)",
    tag = "graphs",
    responses((status = 200, description = "None run here yet: an empty list", body = ListResponse<Object>)),
    security(("bearer" = []))
)]
pub async fn accumulators(caller: Caller) -> ApiResult<Json<ListResponse<serde_json::Value>>> {
    caller.require(Role::Read)?;
    Ok(empty())
}

#[utoipa::path(
    get,
    path = "/v1/health/graphs",
    operation_id = "list_graphs",
    summary = "Computation graphs (none yet)",
    tag = "graphs",
    responses((status = 200, description = "None run here yet: an empty list", body = ListResponse<Object>)),
    security(("bearer" = []))
)]
pub async fn graphs(caller: Caller) -> ApiResult<Json<ListResponse<serde_json::Value>>> {
    caller.require(Role::Read)?;
    Ok(empty())
}

#[utoipa::path(
    get,
    path = "/v1/health/reactors",
    operation_id = "list_reactors",
    summary = "Reactors (none yet)",
    tag = "graphs",
    responses((status = 200, description = "None run here yet: an empty list", body = ListResponse<Object>)),
    security(("bearer" = []))
)]
pub async fn reactors(caller: Caller) -> ApiResult<Json<ListResponse<serde_json::Value>>> {
    caller.require(Role::Read)?;
    Ok(empty())
}

#[utoipa::path(
    get,
    path = "/v1/health/graphs/{name}",
    operation_id = "get_graph",
    summary = "A computation graph (none yet: 404)",
    tag = "graphs",
    params(("name" = String, Path, description = "Graph name")),
    responses((status = 404, description = "No computation graph runs here yet: graph_not_found", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn graph(
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<ListResponse<serde_json::Value>>> {
    caller.require(Role::Read)?;
    Err(ApiError::not_found(
        "graph_not_found",
        format!("graph '{name}' not found"),
    ))
}

#[utoipa::path(
    get,
    path = "/v1/agents",
    operation_id = "list_agents",
    summary = "Agents (none)",
    tag = "graphs",
    responses((status = 200, description = "None run here yet: an empty list", body = ListResponse<Object>)),
    security(("bearer" = []))
)]
pub async fn agents(caller: Caller) -> ApiResult<Json<ListResponse<serde_json::Value>>> {
    caller.require(Role::Read)?;
    Ok(empty())
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
