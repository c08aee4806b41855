//! Computation-graph health, agents and the compiler. Computation graphs
//! are not run by this host yet: the lists are empty and names are 404.
//! Agents and a server-side compiler are not used (packages are built by
//! `cloacinactl pack`): empty list, status `not_used`.

use axum::Json;
use axum::extract::Path;
use serde_json::json;

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};

fn empty() -> Json<serde_json::Value> {
    Json(json!({"items": [], "total": 0}))
}

pub async fn accumulators(caller: Caller) -> ApiResult<Json<serde_json::Value>> {
    caller.require(Role::Read)?;
    Ok(empty())
}

pub async fn graphs(caller: Caller) -> ApiResult<Json<serde_json::Value>> {
    caller.require(Role::Read)?;
    Ok(empty())
}

pub async fn reactors(caller: Caller) -> ApiResult<Json<serde_json::Value>> {
    caller.require(Role::Read)?;
    Ok(empty())
}

pub async fn graph(caller: Caller, Path(name): Path<String>) -> ApiResult<Json<serde_json::Value>> {
    caller.require(Role::Read)?;
    Err(ApiError::not_found(
        "graph_not_found",
        format!("graph '{name}' not found"),
    ))
}

pub async fn agents(caller: Caller) -> ApiResult<Json<serde_json::Value>> {
    caller.require(Role::Read)?;
    Ok(empty())
}

pub async fn compiler(caller: Caller) -> ApiResult<Json<serde_json::Value>> {
    caller.require(Role::Read)?;
    Ok(Json(json!({
        "status": "not_used",
        "pending": 0,
        "building": 0,
        "last_success_at": null,
        "last_failure_at": null,
        "seconds_since_heartbeat": null,
    })))
}
