//! The audit log (issue 19): every change to keys, tenants and packages,
//! with the key that made it and the address it came from, newest first,
//! for god-mode keys only.

use cloacina_server::Limits;
use serde_json::{Value, json};

use crate::support::{GOD_KEY, TestServer};
use crate::uploads::upload;

fn entries(body: &Value) -> Vec<Value> {
    body["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_recorded_with_who_what_and_from_where() {
    let server = TestServer::start(Limits::default()).await;
    let (status, body) = server
        .call(
            "POST",
            "/v1/tenants",
            GOD_KEY,
            Some(json!({"name": "acme"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, created) = server
        .call(
            "POST",
            "/v1/tenants/acme/keys",
            GOD_KEY,
            Some(json!({"name": "acme-ci", "role": "write"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let key_id = created["id"].as_str().expect("id").to_owned();
    let (status, body) = server
        .call("DELETE", &format!("/v1/auth/keys/{key_id}"), GOD_KEY, None)
        .await;
    assert_eq!(status, 200, "{body}");
    let package = cloacina_tests::swollen_package("audited", 1 << 10, 0);
    let (status, body) = upload(server.addr, &package).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server
        .call("DELETE", "/v1/tenants/acme", GOD_KEY, None)
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = server.call("GET", "/v1/audit", GOD_KEY, None).await;
    assert_eq!(status, 200, "{body}");
    let items = entries(&body);
    let actions: Vec<&str> = items.iter().filter_map(|e| e["action"].as_str()).collect();
    // Newest first.
    assert_eq!(
        actions,
        [
            "tenant.remove",
            "package.upload",
            "key.revoke",
            "key.create",
            "tenant.create"
        ],
        "{body}"
    );
    assert_eq!(body["total"], 5);
    for entry in &items {
        assert_eq!(entry["address"], "127.0.0.1", "{entry}");
        assert_eq!(entry["actor_name"], "bootstrap", "{entry}");
        assert!(entry["actor_key_id"].as_str().is_some(), "{entry}");
        assert!(
            entry["at"].as_str().is_some_and(|at| at.contains('T')),
            "{entry}"
        );
    }
    let created_entry = &items[3];
    assert_eq!(created_entry["target"], key_id);
    assert_eq!(created_entry["tenant"], "acme");
    assert_eq!(created_entry["detail"]["name"], "acme-ci");
    assert_eq!(created_entry["detail"]["role"], "write");
    assert_eq!(items[1]["target"], "audited@1.0.0");
    assert_eq!(items[1]["tenant"], "public");

    let (status, page) = server
        .call("GET", "/v1/audit?limit=2&offset=1", GOD_KEY, None)
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(entries(&page).len(), 2);
    assert_eq!(entries(&page)[0]["action"], "package.upload");

    // Only god mode reads it.
    let (admin, _) = server.key("admin", None).await;
    let (status, body) = server.call("GET", "/v1/audit", &admin, None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "admin_required");
    server.stop().await;
}
