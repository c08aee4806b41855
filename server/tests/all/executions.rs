//! Cancelling an execution over HTTP.

use std::time::{Duration, Instant};

use cloacina_server::Limits;

use crate::support::{GOD_KEY, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_is_cancelled_over_http_once_and_idempotently() {
    let server = TestServer::start(Limits::default()).await;
    server.register_waiting_workflow("public").await;
    let id = server.execute("public", "waiting", GOD_KEY).await;
    let cancel = format!("/v1/tenants/public/executions/{id}/cancel");

    // A read key may not cancel.
    let (reader, _) = server.key("read", Some("public")).await;
    let (status, body) = server.call("POST", &cancel, &reader, None).await;
    assert_eq!(status, 403, "{body}");

    let asked = Instant::now();
    let (status, body) = server.call("POST", &cancel, GOD_KEY, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cancelled"], true);
    assert_eq!(body["status"], "Cancelled");
    // Its running task was asked to stop and did.
    loop {
        let (_, tasks) = server
            .call(
                "GET",
                &format!("/v1/tenants/public/executions/{id}/tasks"),
                GOD_KEY,
                None,
            )
            .await;
        if tasks.to_string().contains("\"Cancelled\"") || tasks.to_string().contains("cancelled") {
            break;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "the task did not stop: {tasks}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, events) = server
        .call(
            "GET",
            &format!("/v1/tenants/public/executions/{id}/events"),
            GOD_KEY,
            None,
        )
        .await;
    assert!(
        events.to_string().contains("workflow_cancelled"),
        "{events}"
    );

    // Again: nothing to do, and it says so.
    let (status, body) = server.call("POST", &cancel, GOD_KEY, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cancelled"], false);
    assert_eq!(body["status"], "Cancelled");

    let (status, body) = server
        .call(
            "POST",
            "/v1/tenants/public/executions/00000000-0000-4000-8000-000000000000/cancel",
            GOD_KEY,
            None,
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "execution_not_found");
    server.stop().await;
}
