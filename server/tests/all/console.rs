//! The web console's files: served at /ui/ with a strict policy, cached
//! by version, nothing outside them; off with `--no-console`. (The pages
//! themselves are driven in a real browser: tests/browser.)

use serde_json::json;

use crate::support::{GOD_KEY, TestServer, raw};

async fn get(server: &TestServer, path: &str, extra: &str) -> crate::support::Response {
    raw(
        server.addr,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\n{extra}Connection: close\r\n\r\n").as_bytes(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_with_a_strict_policy() {
    let server = TestServer::start(Default::default()).await;
    let shell = get(&server, "/ui/", "").await;
    assert_eq!(shell.status, 200);
    assert!(
        shell
            .header("content-type")
            .is_some_and(|kind| kind.starts_with("text/html"))
    );
    let policy = shell.header("content-security-policy").expect("a policy");
    for rule in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(rule), "{policy}");
    }
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert_eq!(
        shell.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    // Any page path is the shell (the browser routes).
    assert_eq!(get(&server, "/ui/executions/abc", "").await.status, 200);
    assert_eq!(get(&server, "/ui", "").await.status, 308);

    let script = get(&server, "/ui/assets/js/main.js", "").await;
    assert_eq!(script.status, 200);
    assert!(
        script
            .header("content-type")
            .is_some_and(|kind| kind.starts_with("text/javascript"))
    );
    let etag = script.header("etag").expect("an etag");
    let again = get(
        &server,
        "/ui/assets/js/main.js",
        &format!("If-None-Match: {etag}\r\n"),
    )
    .await;
    assert_eq!(again.status, 304);

    for outside in [
        "/ui/assets/../Cargo.toml",
        "/ui/assets/%2e%2e/Cargo.toml",
        "/ui/assets/nothing.js",
        "/ui/assets/index",
    ] {
        assert_eq!(get(&server, outside, "").await.status, 404, "{outside}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_can_be_turned_off() {
    let server = TestServer::start_without_console().await;
    assert_eq!(get(&server, "/ui/", "").await.status, 404);
    assert_eq!(get(&server, "/ui/assets/js/main.js", "").await.status, 404);
    // The API is unaffected.
    assert_eq!(get(&server, "/health", "").await.status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_learns_its_own_role() {
    let server = TestServer::start(Default::default()).await;
    let (status, me) = server.call("GET", "/v1/auth/me", GOD_KEY, None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["permissions"], "admin");
    assert_eq!(me["is_admin"], true);
    server.create_tenant("acme").await;
    let (reader, id) = server.key("read", Some("acme")).await;
    let (status, me) = server.call("GET", "/v1/auth/me", &reader, None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        (
            me["id"].clone(),
            me["permissions"].clone(),
            me["tenant_id"].clone(),
            me["is_admin"].clone()
        ),
        (json!(id), json!("read"), json!("acme"), json!(false))
    );
    let (status, _) = server
        .call("GET", "/v1/auth/me", "clk_nonsense", None)
        .await;
    assert_eq!(status, 401);
    server.stop().await;
}
