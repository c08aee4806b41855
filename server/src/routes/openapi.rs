//! `GET /openapi.json`: the OpenAPI 3.1 document of the API, built from
//! the route table below (kept beside the router, checked by a test that
//! every routed path is documented).

use axum::Json;
use serde_json::{Value, json};

/// (method, path, operation id, summary, success status, public).
pub const OPERATIONS: &[(&str, &str, &str, &str, u16, bool)] = &[
    ("get", "/health", "health", "Liveness", 200, true),
    (
        "get",
        "/ready",
        "ready",
        "Readiness (database reachable)",
        200,
        true,
    ),
    (
        "get",
        "/metrics",
        "metrics",
        "Prometheus metrics",
        200,
        true,
    ),
    (
        "get",
        "/openapi.json",
        "openapi",
        "This document",
        200,
        true,
    ),
    (
        "get",
        "/v1/auth/keys",
        "list_keys",
        "List API keys (admin)",
        200,
        false,
    ),
    (
        "post",
        "/v1/auth/keys",
        "create_key",
        "Create an API key (admin)",
        201,
        false,
    ),
    (
        "delete",
        "/v1/auth/keys/{key_id}",
        "revoke_key",
        "Revoke an API key (admin)",
        200,
        false,
    ),
    (
        "post",
        "/v1/auth/ws-ticket",
        "create_ws_ticket",
        "A single-use WebSocket ticket (60 s)",
        200,
        false,
    ),
    (
        "get",
        "/v1/tenants",
        "list_tenants",
        "List tenants (god mode)",
        200,
        false,
    ),
    (
        "post",
        "/v1/tenants",
        "create_tenant",
        "Create a tenant (god mode)",
        201,
        false,
    ),
    (
        "delete",
        "/v1/tenants/{tenant_id}",
        "remove_tenant",
        "Remove a tenant and its data (god mode)",
        200,
        false,
    ),
    (
        "post",
        "/v1/tenants/{tenant_id}/keys",
        "create_tenant_key",
        "Create a tenant-scoped key (god mode)",
        201,
        false,
    ),
    (
        "get",
        "/v1/tenants/{tenant_id}/workflows",
        "list_workflows",
        "List workflows",
        200,
        false,
    ),
    (
        "post",
        "/v1/tenants/{tenant_id}/workflows",
        "upload_workflow",
        "Upload a .cloacina package (multipart field `file`)",
        201,
        false,
    ),
    (
        "get",
        "/v1/tenants/{tenant_id}/workflows/{name}",
        "get_workflow",
        "A workflow with its task graph and load status",
        200,
        false,
    ),
    (
        "post",
        "/v1/tenants/{tenant_id}/workflows/{name}/execute",
        "execute_workflow",
        "Start an execution (body: {\"context\": {...}, \"version\": \"1.2.0\" to pin a registered version})",
        202,
        false,
    ),
    (
        "delete",
        "/v1/tenants/{tenant_id}/workflows/{name}/{version}",
        "delete_workflow",
        "Unregister a package version (idempotent; ?cancel=true cancels its running executions)",
        200,
        false,
    ),
    (
        "get",
        "/v1/tenants/{tenant_id}/executions",
        "list_executions",
        "List executions (status, workflow, limit, offset)",
        200,
        false,
    ),
    (
        "get",
        "/v1/tenants/{tenant_id}/executions/{exec_id}",
        "get_execution",
        "An execution",
        200,
        false,
    ),
    (
        "get",
        "/v1/tenants/{tenant_id}/executions/{exec_id}/events",
        "get_execution_events",
        "An execution's events",
        200,
        false,
    ),
    (
        "get",
        "/v1/tenants/{tenant_id}/executions/{exec_id}/tasks",
        "get_execution_tasks",
        "An execution's tasks",
        200,
        false,
    ),
    (
        "get",
        "/v1/tenants/{tenant_id}/triggers",
        "list_triggers",
        "Cron schedules and triggers",
        200,
        false,
    ),
    (
        "get",
        "/v1/tenants/{tenant_id}/triggers/{name}",
        "get_trigger",
        "A schedule and its recent executions",
        200,
        false,
    ),
    (
        "get",
        "/v1/health/accumulators",
        "list_accumulators",
        "Accumulators (none yet)",
        200,
        false,
    ),
    (
        "get",
        "/v1/health/graphs",
        "list_graphs",
        "Computation graphs (none yet)",
        200,
        false,
    ),
    (
        "get",
        "/v1/health/graphs/{name}",
        "get_graph",
        "A computation graph",
        200,
        false,
    ),
    (
        "get",
        "/v1/health/reactors",
        "list_reactors",
        "Reactors (none yet)",
        200,
        false,
    ),
    (
        "get",
        "/v1/agents",
        "list_agents",
        "Agents (not used)",
        200,
        false,
    ),
    (
        "get",
        "/v1/compiler/status",
        "compiler_status",
        "Compiler (not used)",
        200,
        false,
    ),
    (
        "get",
        "/v1/ws/delivery/{recipient}",
        "delivery_socket",
        "Delivery WebSocket (exec_events:<id>)",
        101,
        false,
    ),
];

pub fn build() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, id, summary, status, public) in OPERATIONS {
        let parameters: Vec<Value> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut operation = json!({
            "operationId": id,
            "summary": summary,
            "parameters": parameters,
            "responses": {
                status.to_string(): {"description": "success"},
                "default": {
                    "description": "error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
                }
            }
        });
        if !public {
            operation["security"] = json!([{"bearer": []}]);
        }
        let entry = paths.entry((*path).to_owned()).or_insert_with(|| json!({}));
        entry[*method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "cloacina server",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Wire-compatible with cloacina-client 0.8.0. Every error is {\"error\", \"code\"}; lists are {\"items\", \"total\"}."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "clk_ API key"}},
            "schemas": {
                "ErrorBody": {
                    "type": "object",
                    "required": ["error", "code"],
                    "properties": {"error": {"type": "string"}, "code": {"type": "string"}}
                }
            }
        }
    })
}

pub async fn document() -> Json<Value> {
    Json(build())
}
