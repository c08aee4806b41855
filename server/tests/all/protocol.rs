//! The weaker spots of issue 11: enumeration, authentication headers,
//! rejections as JSON, file modes.

use cloacina_server::Limits;

use crate::support::{GOD_KEY, TestServer, raw};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_key_cannot_tell_which_other_tenants_exist() {
    let server = TestServer::start(Limits::default()).await;
    server.create_tenant("alpha").await;
    server.create_tenant("beta").await;
    let (alpha, _) = server.key("read", Some("alpha")).await;
    let (exists, _) = server
        .call("GET", "/v1/tenants/beta/executions", &alpha, None)
        .await;
    let (missing, _) = server
        .call("GET", "/v1/tenants/gamma/executions", &alpha, None)
        .await;
    assert_eq!((exists, missing), (403, 403));
    let (own, _) = server
        .call("GET", "/v1/tenants/alpha/executions", &alpha, None)
        .await;
    assert_eq!(own, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_follows_the_http_rules() {
    let server = TestServer::start(Limits::default()).await;
    let refused = raw(
        server.addr,
        b"GET /v1/tenants HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(refused.status, 401);
    assert!(
        refused
            .header("www-authenticate")
            .is_some_and(|value| value.starts_with("Bearer")),
        "{}",
        refused.head
    );
    let lower = raw(
        server.addr,
        format!("GET /v1/tenants HTTP/1.1\r\nHost: t\r\nAuthorization: bearer {GOD_KEY}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(lower.status, 200, "the scheme is case-insensitive");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_that_does_not_decode_gets_the_json_error() {
    let server = TestServer::start(Limits::default()).await;
    let response = raw(
        server.addr,
        format!("GET /v1/tenants/%FF/executions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {GOD_KEY}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(response.status, 400);
    assert!(
        response
            .header("content-type")
            .is_some_and(|value| value.starts_with("application/json")),
        "{}",
        response.head
    );
    assert_eq!(response.json()["code"], "invalid_request");
    server.stop().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_files_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt as _;

    let server = TestServer::start(Limits::default()).await;
    server.create_tenant("alpha").await;
    for name in ["cloacina.db", "cloacina.alpha.db"] {
        let mode = std::fs::metadata(server.home.path().join(name))
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{name} is {mode:o}");
    }
    server.stop().await;
}
