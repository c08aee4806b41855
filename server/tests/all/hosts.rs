//! The hosts view: a server lists itself (its bound address, its version,
//! a fresh heartbeat, the tasks it runs), as the same host in every tenant
//! it serves; tenant scope and authentication hold as on every route.

use std::time::{Duration, Instant};

use cloacina_server::Limits;
use serde_json::{Value, json};

use crate::support::{GOD_KEY, TestServer};

/// The one host `key` sees in `tenant`.
async fn only_host(server: &TestServer, tenant: &str, key: &str) -> Value {
    let (status, body) = server
        .call("GET", &format!("/v1/tenants/{tenant}/hosts"), key, None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tenant_id"], tenant, "{body}");
    assert_eq!(body["total"], 1, "{body}");
    let hosts = body["items"].as_array().expect("items");
    assert_eq!(hosts.len(), 1, "{body}");
    hosts[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_is_its_tenants_one_host() {
    let server = TestServer::start(Limits::default()).await;
    let host = only_host(&server, "public", GOD_KEY).await;
    assert_eq!(host["this_host"], true, "{host}");
    assert_eq!(host["address"], server.addr.to_string(), "{host}");
    assert!(
        host["version"].as_str().is_some_and(|v| !v.is_empty()),
        "{host}"
    );
    assert!(
        host["started_at"].as_str().is_some_and(|t| !t.is_empty()),
        "{host}"
    );
    assert!(
        host["last_heartbeat"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{host}"
    );
    // Renewed every 10 s (a third of the 30 s lease), and just started.
    let age = host["heartbeat_age_ms"].as_i64().expect("age");
    assert!((0..15_000).contains(&age), "{host}");
    assert_eq!(host["running_tasks"], 0, "{host}");
    assert_eq!(host["owned_graphs"], json!([]), "{host}");

    // Another tenant: the same host (one id for the whole server).
    server.create_tenant("acme").await;
    let (acme_reader, _) = server.key("read", Some("acme")).await;
    let in_acme = only_host(&server, "acme", &acme_reader).await;
    assert_eq!(in_acme["id"], host["id"], "{in_acme}");
    assert_eq!(in_acme["this_host"], true, "{in_acme}");

    // A read key of another tenant is refused; no key at all is 401.
    let (status, body) = server
        .call("GET", "/v1/tenants/public/hosts", &acme_reader, None)
        .await;
    assert_eq!(status, 403, "{body}");
    let anonymous = crate::support::raw(
        server.addr,
        b"GET /v1/tenants/public/hosts HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(anonymous.status, 401);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_counts_the_tasks_it_runs() {
    let server = TestServer::start(Limits::default()).await;
    server.register_waiting_workflow("public").await;
    let id = server.execute("public", "waiting", GOD_KEY).await;

    let running = async |expected: u64| {
        let asked = Instant::now();
        loop {
            let host = only_host(&server, "public", GOD_KEY).await;
            if host["running_tasks"] == expected {
                return;
            }
            assert!(
                asked.elapsed() < Duration::from_secs(10),
                "never {expected} running: {host}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    running(1).await;
    // Cancelled: its task is asked to stop, stops, and is no longer held.
    let (status, body) = server
        .call(
            "POST",
            &format!("/v1/tenants/public/executions/{id}/cancel"),
            GOD_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    running(0).await;
    server.stop().await;
}
