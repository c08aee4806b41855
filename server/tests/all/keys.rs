//! God-mode keys (issue 11, defect 4): only a god key revokes one, and the
//! last one stands; a lost one is recovered offline.

use cloacina_server::{Limits, Role};

use crate::support::{GOD_KEY, TestServer};

async fn god_key_id(server: &TestServer) -> String {
    let (status, body) = server.call("GET", "/v1/auth/keys", GOD_KEY, None).await;
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|key| key["is_admin"] == true)
        .and_then(|key| key["id"].as_str())
        .expect("the bootstrap key")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_admin_that_is_not_god_cannot_revoke_the_god_key() {
    let server = TestServer::start(Limits::default()).await;
    let (admin, _) = server.key("admin", None).await;
    let god = god_key_id(&server).await;
    let (status, body) = server
        .call("DELETE", &format!("/v1/auth/keys/{god}"), &admin, None)
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "admin_required");
    let (status, _) = server.call("GET", "/v1/tenants", GOD_KEY, None).await;
    assert_eq!(status, 200, "the god key still works");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_god_key_stands_and_a_lost_one_is_recovered_offline() {
    let server = TestServer::start(Limits::default()).await;
    let god = god_key_id(&server).await;
    let (status, body) = server
        .call("DELETE", &format!("/v1/auth/keys/{god}"), GOD_KEY, None)
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "last_god_key");

    // A second god key, made in the database while the server runs.
    let db = cloacina_runtime::Database::connect(
        &format!(
            "sqlite://{}",
            server.home.path().join("cloacina.db").display()
        ),
        &cloacina_runtime::TenantId::public(),
    )
    .await
    .expect("opens");
    let rescue = cloacina_server::create_key_offline(&db, "rescue", Role::Read, None, true)
        .await
        .expect("creates");
    db.close().await;
    assert!(rescue.god && rescue.role == Role::Admin);
    let (status, _) = server
        .call("GET", "/v1/tenants", &rescue.plaintext, None)
        .await;
    assert_eq!(status, 200, "the new god key works at once");
    let (status, body) = server
        .call(
            "DELETE",
            &format!("/v1/auth/keys/{god}"),
            &rescue.plaintext,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.call("GET", "/v1/tenants", GOD_KEY, None).await;
    assert_eq!(status, 401);
    server.stop().await;
}
