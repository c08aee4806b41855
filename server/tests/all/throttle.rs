//! Throttling (issue 19): failed authentications per client address, and
//! requests per key, each answered 429 with `Retry-After` and a JSON error
//! while the server keeps answering everyone else.

use std::num::NonZeroU32;

use cloacina_server::Limits;

use crate::support::{GOD_KEY, TestServer, connect, raw};

/// A GET with `key`; status, `Retry-After` and the JSON body.
async fn get(
    server: &TestServer,
    path: &str,
    key: &str,
) -> (u16, Option<String>, serde_json::Value) {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    );
    let response = raw(server.addr, request.as_bytes()).await;
    (
        response.status,
        response.header("retry-after"),
        response.json(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_guessing_keys_is_refused_after_its_budget() {
    let server = TestServer::start(Limits {
        auth_failures_per_minute: NonZeroU32::new(5).expect("nonzero"),
        ..Limits::default()
    })
    .await;
    for guess in 0..5 {
        let (status, _, body) = get(
            &server,
            "/v1/auth/keys",
            &format!("clk_wrongwrongwrongwrong{guess:08}"),
        )
        .await;
        assert_eq!(status, 401, "guess {guess}: {body}");
    }
    let (status, retry_after, body) =
        get(&server, "/v1/auth/keys", "clk_wrongwrongwrongwrong99999999").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["code"], "too_many_failed_authentications");
    let seconds: u64 = retry_after
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!((1..=60).contains(&seconds), "Retry-After {seconds}");
    // While refused, even a right key from that address is not told apart
    // from a wrong one; the server still answers what needs no key.
    let (status, _, body) = get(&server, "/v1/auth/keys", GOD_KEY).await;
    assert_eq!(status, 429, "{body}");
    // The WebSocket upgrade takes the same path, tickets included.
    let refused = connect(
        &server,
        "/v1/ws/accumulator/anything?token=guessed",
        GOD_KEY,
    )
    .await;
    assert_eq!(refused.err(), Some(429));
    let (status, _, _) = get(&server, "/health", "").await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_request_rate_gets_429_and_others_do_not() {
    let server = TestServer::start(Limits {
        key_requests_per_second: NonZeroU32::new(3),
        ..Limits::default()
    })
    .await;
    let (other, _) = server.key("read", None).await;
    let mut statuses = Vec::new();
    let mut refusal = None;
    for _ in 0..10 {
        let (status, retry_after, body) = get(&server, "/v1/auth/keys", GOD_KEY).await;
        if status == 429 {
            refusal.get_or_insert((retry_after, body));
        }
        statuses.push(status);
    }
    assert!(statuses.contains(&200), "{statuses:?}");
    let (retry_after, body) = refusal.unwrap_or_else(|| panic!("no 429 in {statuses:?}"));
    assert_eq!(body["code"], "rate_limited");
    assert_eq!(retry_after.as_deref(), Some("1"));
    let (status, _, body) = get(&server, "/v1/auth/me", &other).await;
    assert_eq!(status, 200, "another key is not limited: {body}");
    server.stop().await;
}
