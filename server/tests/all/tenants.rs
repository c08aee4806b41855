//! Tenants start apart: one whose database is slow to open (here: locked
//! by another process's transaction) holds up nobody else's requests.

use std::str::FromStr as _;
use std::time::{Duration, Instant};

use cloacina_server::Limits;
use sqlx::{ConnectOptions as _, Connection as _, Executor as _};

use crate::support::{GOD_KEY, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_one_tenant_are_answered_while_another_starts_slowly() {
    let server = TestServer::start(Limits::default()).await;
    server.create_tenant("slow").await;
    let home = server.stop_keeping_home().await;

    // Another process holds the slow tenant's database: opening it waits.
    let file = home.path().join("cloacina.slow.db");
    let mut holder =
        sqlx::sqlite::SqliteConnectOptions::from_str(&format!("sqlite://{}", file.display()))
            .expect("options")
            .connect()
            .await
            .expect("opens the tenant's file");
    holder
        .execute("BEGIN EXCLUSIVE")
        .await
        .expect("takes the lock");

    let server = TestServer::start_in(home, Limits::default()).await;
    let addr = server.addr;
    let slow = tokio::spawn(async move {
        let started = Instant::now();
        let request = format!(
            "GET /v1/tenants/slow/executions HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {GOD_KEY}\r\nConnection: close\r\n\r\n"
        );
        let response = crate::support::raw(addr, request.as_bytes()).await;
        (response.status, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..5 {
        let asked = Instant::now();
        let (status, body) = server
            .call("GET", "/v1/tenants/public/executions", GOD_KEY, None)
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "public answered after {:?}",
            asked.elapsed()
        );
    }
    assert!(
        !slow.is_finished(),
        "the slow tenant's request should still wait on its start"
    );

    holder.execute("ROLLBACK").await.expect("releases the lock");
    holder.close().await.expect("closes");
    let (status, waited) = slow.await.expect("the slow request");
    // Answered once the lock went: served, or told to retry if its start
    // gave up meanwhile.
    assert!(status == 200 || status == 503, "{status} after {waited:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = server
            .call("GET", "/v1/tenants/slow/executions", GOD_KEY, None)
            .await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "{status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.stop().await;
}
