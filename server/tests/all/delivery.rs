//! The delivery socket under abuse (issue 11, defects 3, 5 and 6): another
//! tenant's key sees and acks nothing, unknown executions and idle sockets
//! are closed, messages, sockets and tickets are bounded.

use std::time::Duration;

use cloacina_server::Limits;
use futures_util::SinkExt as _;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{GOD_KEY, Next, Socket, TestServer, connect, next};

fn limits() -> Limits {
    Limits {
        unknown_execution_grace: Duration::from_millis(500),
        idle_after_end: Duration::from_millis(500),
        ..Limits::default()
    }
}

/// Opens the delivery socket for `execution` with `key`; the HTTP status
/// when the upgrade is refused.
async fn open(server: &TestServer, execution: &str, key: &str) -> Result<Socket, u16> {
    connect(
        server,
        &format!("/v1/ws/delivery/exec_events:{execution}"),
        key,
    )
    .await
}

async fn hello(socket: &mut Socket) {
    socket
        .send(Message::text(
            json!({"type": "hello", "protocol_version": 1, "since_id": null}).to_string(),
        ))
        .await
        .expect("hello");
}

/// Reads pushes until the socket closes; their ids and the close code.
async fn drain(socket: &mut Socket, ack: bool) -> (Vec<i64>, Option<u16>) {
    let mut ids = Vec::new();
    loop {
        match next(socket).await {
            Next::Frame(frame) if frame["type"] == "push" => {
                let id = frame["id"].as_i64().expect("id");
                ids.push(id);
                if ack {
                    socket
                        .send(Message::text(
                            json!({"type": "ack", "protocol_version": 1, "id": id}).to_string(),
                        ))
                        .await
                        .expect("ack");
                }
            }
            Next::Frame(_) => {}
            Next::Closed(code) => return (ids, code),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_key_neither_sees_nor_suppresses_an_execution() {
    let server = TestServer::start(limits()).await;
    server.create_tenant("alpha").await;
    server.create_tenant("beta").await;
    server.register_quick_workflow("beta").await;
    let (alpha_key, _) = server.key("read", Some("alpha")).await;
    let (beta_key, _) = server.key("write", Some("beta")).await;
    let execution = server.execute_quick("beta", &beta_key).await;

    // Alpha's key: closed 4404 before any welcome, and its acks go nowhere.
    let mut intruder = open(&server, &execution, &alpha_key)
        .await
        .expect("upgrade");
    hello(&mut intruder).await;
    for id in 1..=20 {
        let _ = intruder
            .send(Message::text(
                json!({"type": "ack", "protocol_version": 1, "id": id}).to_string(),
            ))
            .await;
    }
    match next(&mut intruder).await {
        Next::Closed(code) => assert_eq!(code, Some(4404)),
        Next::Frame(frame) => panic!("another tenant's key was sent {frame}"),
    }

    // Beta's own client gets every event, ending with the terminal one.
    let mut owner = open(&server, &execution, &beta_key).await.expect("upgrade");
    hello(&mut owner).await;
    match next(&mut owner).await {
        Next::Frame(frame) => assert_eq!(frame["type"], "welcome"),
        other => panic!("expected a welcome, got {other:?}"),
    }
    let (ids, _) = drain(&mut owner, false).await;
    assert!(ids.len() >= 4, "every event is delivered: {ids:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_executions_are_closed_after_a_grace_and_idle_sockets_after_the_end() {
    let server = TestServer::start(limits()).await;
    let mut unknown = open(&server, &uuid::Uuid::new_v4().to_string(), GOD_KEY)
        .await
        .expect("upgrade");
    hello(&mut unknown).await;
    match next(&mut unknown).await {
        Next::Closed(code) => assert_eq!(code, Some(4404)),
        Next::Frame(frame) => panic!("welcomed to an unknown execution: {frame}"),
    }

    server.register_quick_workflow("public").await;
    let execution = server.execute_quick("public", GOD_KEY).await;
    let mut socket = open(&server, &execution, GOD_KEY).await.expect("upgrade");
    hello(&mut socket).await;
    let (ids, code) = drain(&mut socket, true).await;
    assert!(!ids.is_empty());
    assert_eq!(
        code,
        Some(1000),
        "closed normally once the execution has ended"
    );

    // Acked pushes are not pushed again to the same tenant's recipient.
    let mut again = open(&server, &execution, GOD_KEY).await.expect("upgrade");
    hello(&mut again).await;
    let (ids, _) = drain(&mut again, false).await;
    assert!(ids.is_empty(), "acked events came again: {ids:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_closed_with_1009() {
    let server = TestServer::start(limits()).await;
    server.register_quick_workflow("public").await;
    let execution = server.execute_quick("public", GOD_KEY).await;

    // A ping before the hello is fine.
    let mut socket = open(&server, &execution, GOD_KEY).await.expect("upgrade");
    socket
        .send(Message::Ping(vec![1, 2].into()))
        .await
        .expect("ping");
    hello(&mut socket).await;
    match next(&mut socket).await {
        Next::Frame(frame) => assert_eq!(frame["type"], "welcome"),
        other => panic!("a ping before the hello broke the socket: {other:?}"),
    }
    let huge = "x".repeat(100 << 10);
    let _ = socket.send(Message::text(huge.clone())).await;
    let code = loop {
        match next(&mut socket).await {
            Next::Frame(_) => {}
            Next::Closed(code) => break code,
        }
    };
    assert_eq!(code, Some(1009));

    // Also as the first frame.
    let mut socket = open(&server, &execution, GOD_KEY).await.expect("upgrade");
    let _ = socket.send(Message::text(huge)).await;
    match next(&mut socket).await {
        Next::Closed(code) => assert_eq!(code, Some(1009)),
        Next::Frame(frame) => panic!("{frame}"),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_holds_a_bounded_number_of_sockets() {
    let server = TestServer::start(Limits {
        sockets_per_key: 3,
        ..limits()
    })
    .await;
    server.register_quick_workflow("public").await;
    let execution = server.execute_quick("public", GOD_KEY).await;
    let (reader, _) = server.key("read", None).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(
            open(&server, &execution, &reader)
                .await
                .expect("within the cap"),
        );
    }
    assert_eq!(open(&server, &execution, &reader).await.err(), Some(429));
    assert!(
        open(&server, &execution, GOD_KEY).await.is_ok(),
        "another key is not refused"
    );
    drop(held.pop());
    // The server sees the close, then the key has room again.
    let mut reopened = None;
    for _ in 0..50 {
        if let Ok(socket) = open(&server, &execution, &reader).await {
            reopened = Some(socket);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reopened.is_some(), "a closed socket gives its place back");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_cannot_starve_others_of_tickets() {
    let server = TestServer::start(limits()).await;
    server.create_tenant("alpha").await;
    let (greedy, _) = server.key("read", Some("alpha")).await;
    let mut refused = None;
    for attempt in 0..1100 {
        let (status, body) = server
            .call("POST", "/v1/auth/ws-ticket", &greedy, None)
            .await;
        if status != 200 {
            refused = Some((attempt, status, body));
            break;
        }
    }
    let (attempt, status, body) = refused.expect("the key's tickets are bounded");
    assert_eq!((attempt, status), (16, 429), "{body}");
    assert_eq!(body["code"], "too_many_tickets");
    // Everyone else still gets tickets, the god key included.
    let (status, body) = server
        .call("POST", "/v1/auth/ws-ticket", GOD_KEY, None)
        .await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_key_closes_its_sockets() {
    let server = TestServer::start(Limits {
        idle_after_end: Duration::from_secs(60),
        ..limits()
    })
    .await;
    server.register_quick_workflow("public").await;
    let execution = server.execute_quick("public", GOD_KEY).await;
    let (reader, reader_id) = server.key("read", None).await;
    let mut socket = open(&server, &execution, &reader).await.expect("upgrade");
    hello(&mut socket).await;
    match next(&mut socket).await {
        Next::Frame(frame) => assert_eq!(frame["type"], "welcome"),
        other => panic!("expected a welcome, got {other:?}"),
    }
    let (status, body) = server
        .call(
            "DELETE",
            &format!("/v1/auth/keys/{reader_id}"),
            GOD_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let code = loop {
        match next(&mut socket).await {
            Next::Frame(_) => {}
            Next::Closed(code) => break code,
        }
    };
    assert_eq!(code, Some(1008), "a revoked key's socket is closed");
    server.stop().await;
}
