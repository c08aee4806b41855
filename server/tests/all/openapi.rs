//! The OpenAPI document against the routes actually served: every
//! documented path and method is routed, each path routes no method it
//! does not document, every route of the 0.8 contract is documented, and
//! operations carry request and response schemas.

use std::collections::{BTreeMap, BTreeSet};

use cloacina_server::Limits;
use serde_json::Value;

use crate::support::{GOD_KEY, TestServer};

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

/// The 0.8 contract's routes (method, path), as the published SDK calls them.
const CONTRACT: &[(&str, &str)] = &[
    ("get", "/health"),
    ("get", "/ready"),
    ("get", "/v1/agents"),
    ("get", "/v1/auth/keys"),
    ("post", "/v1/auth/keys"),
    ("delete", "/v1/auth/keys/{key_id}"),
    ("post", "/v1/auth/ws-ticket"),
    ("get", "/v1/compiler/status"),
    ("get", "/v1/health/accumulators"),
    ("get", "/v1/health/graphs"),
    ("get", "/v1/health/graphs/{name}"),
    ("get", "/v1/health/reactors"),
    ("get", "/v1/tenants"),
    ("post", "/v1/tenants"),
    ("delete", "/v1/tenants/{tenant_id}"),
    ("get", "/v1/tenants/{tenant_id}/executions"),
    ("get", "/v1/tenants/{tenant_id}/executions/{exec_id}"),
    ("get", "/v1/tenants/{tenant_id}/executions/{exec_id}/events"),
    ("get", "/v1/tenants/{tenant_id}/executions/{exec_id}/tasks"),
    ("post", "/v1/tenants/{tenant_id}/keys"),
    ("get", "/v1/tenants/{tenant_id}/triggers"),
    ("get", "/v1/tenants/{tenant_id}/triggers/{name}"),
    ("get", "/v1/tenants/{tenant_id}/workflows"),
    ("post", "/v1/tenants/{tenant_id}/workflows"),
    ("get", "/v1/tenants/{tenant_id}/workflows/{name}"),
    ("post", "/v1/tenants/{tenant_id}/workflows/{name}/execute"),
    (
        "delete",
        "/v1/tenants/{tenant_id}/workflows/{name}/{version}",
    ),
    ("get", "/v1/ws/delivery/{recipient}"),
];

fn documented(document: &Value) -> BTreeMap<String, BTreeSet<String>> {
    document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(path, item)| {
            let methods = METHODS
                .iter()
                .filter(|method| item.get(**method).is_some())
                .map(|method| (*method).to_owned())
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

/// A concrete path for a template: parameters filled with plausible values.
fn concrete(template: &str) -> String {
    template
        .replace("{tenant_id}", "public")
        .replace("{exec_id}", "00000000-0000-4000-8000-000000000000")
        .replace(
            "{recipient}",
            "exec_events:00000000-0000-4000-8000-000000000000",
        )
        .replace("{key_id}", "00000000-0000-4000-8000-000000000000")
        .replace("{version}", "1.0.0")
        .replace("{name}", "missing")
}

/// True when the router has no route for this method and path: the
/// fallback's 404 or the 405.
fn unrouted(status: u16, body: &Value) -> bool {
    status == 405 || (status == 404 && body["error"] == "not found")
}

#[tokio::test]
async fn every_documented_route_is_served_and_every_served_one_documented() {
    let server = TestServer::start(Limits::default()).await;
    let (status, document) = server.call("GET", "/openapi.json", GOD_KEY, None).await;
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0", "{document}");
    let paths = documented(&document);

    for (method, path) in CONTRACT {
        assert!(
            paths
                .get(*path)
                .is_some_and(|methods| methods.contains(*method)),
            "{method} {path} is in the contract but not documented"
        );
    }
    for (path, methods) in &paths {
        for method in METHODS {
            let (status, body) = server
                .call(&method.to_uppercase(), &concrete(path), GOD_KEY, None)
                .await;
            if methods.contains(*method) {
                assert!(
                    !unrouted(status, &body),
                    "{method} {path} is documented but not routed ({status} {body})"
                );
            } else {
                assert_eq!(
                    status, 405,
                    "{method} {path} is routed ({status} {body}) but not documented"
                );
            }
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn operations_carry_their_request_and_response_schemas() {
    let document = serde_json::to_value(cloacina_server::openapi_document()).expect("json");
    let operation = |method: &str, path: &str| document["paths"][path][method].clone();
    let schema_of = |operation: &Value, status: &str| {
        operation["responses"][status]["content"]["application/json"]["schema"].clone()
    };
    let upload = operation("post", "/v1/tenants/{tenant_id}/workflows");
    assert!(
        upload["requestBody"]["content"]["multipart/form-data"]["schema"].is_object(),
        "{upload}"
    );
    assert!(schema_of(&upload, "201").is_object(), "{upload}");
    let execute = operation("post", "/v1/tenants/{tenant_id}/workflows/{name}/execute");
    assert!(
        execute["requestBody"]["content"]["application/json"]["schema"].is_object(),
        "{execute}"
    );
    let detail = operation("get", "/v1/tenants/{tenant_id}/executions/{exec_id}");
    assert_eq!(
        schema_of(&detail, "200")["$ref"],
        "#/components/schemas/ExecutionDetail",
        "{detail}"
    );
    assert_eq!(
        schema_of(&detail, "default")["$ref"],
        "#/components/schemas/ErrorBody"
    );
    assert_eq!(detail["security"][0]["bearer"], serde_json::json!([]));
    assert!(operation("get", "/health")["security"].is_null());
    let schemas = &document["components"]["schemas"];
    // The 0.8 contract's schema names, so a client generated from this
    // document names its models as the published SDK does.
    for name in [
        "ListResponse_KeyInfo",
        "TenantListResponse_ExecutionSummary",
        "KeyCreatedResponse",
        "WorkflowUploadedResponse",
        "ErrorBody",
        "ExecutionDetail",
        "ExecutionEvent",
        "WorkflowDetail",
        "KeyCreatedResponse",
        "ClientFrame",
        "ServerFrame",
    ] {
        assert!(schemas[name].is_object(), "no schema {name}");
    }
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}
