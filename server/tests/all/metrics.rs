//! `/metrics` as Prometheus scrapes it: the families, labels and content
//! type that dashboards and the SDK's compatibility suite read.

use std::time::Duration;

use cloacina_server::Limits;

use crate::support::{GOD_KEY, TestServer, raw};

/// The body of a GET of /metrics, after checking status and content type.
async fn scrape(server: &TestServer) -> String {
    let response = raw(
        server.addr,
        b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type").as_deref(),
        Some("text/plain; version=0.0.4")
    );
    String::from_utf8(response.body).expect("UTF-8")
}

/// The value of the first sample line that starts with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<u64> {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_executions_and_tasks() {
    let server = TestServer::start(Limits::default()).await;
    server.register_quick_workflow("public").await;
    server.execute_quick("public", GOD_KEY).await;
    let health = raw(
        server.addr,
        b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(health.status, 200);

    // The task runs in the background: wait until the host counted it.
    let mut text = scrape(&server).await;
    for _ in 0..100 {
        // The counter and the duration are two updates: wait for both.
        if sample(&text, "cloacina_tasks_total{outcome=\"completed\"}").is_some_and(|n| n > 0)
            && sample(&text, "cloacina_task_duration_seconds_count").is_some_and(|n| n > 0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        text = scrape(&server).await;
    }
    assert!(
        sample(&text, "cloacina_tasks_total{outcome=\"completed\"}").is_some_and(|n| n > 0),
        "{text}"
    );
    for family in [
        "cloacina_up 1",
        r#"cloacina_http_request_duration_seconds_count{method="GET",route="/health",status="200"} 1"#,
        r#"cloacina_http_request_duration_seconds_bucket{method="POST",route="/v1/tenants/{tenant_id}/workflows/{name}/execute",status="202",le="+Inf"} 1"#,
        r#"cloacina_executions_requested_total{outcome="started"} 1"#,
        "cloacina_ws_tickets 0",
        "cloacina_websocket_connections 0",
        "cloacina_executions_total{outcome=\"completed\"}",
        "cloacina_task_duration_seconds_bucket{le=\"0.0005\"}",
        "cloacina_task_duration_seconds_count 1",
        "cloacina_package_loads_total{outcome=\"loaded\"}",
        "cloacina_reconcile_duration_seconds_count",
    ] {
        assert!(text.contains(family), "{family} in\n{text}");
    }
    server.stop().await;
}
