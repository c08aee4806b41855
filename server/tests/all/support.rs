//! A real server on a loopback port with bounds a test chooses, and the
//! bare clients an attacker would use: raw HTTP/1.1 over TCP and
//! WebSockets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cloacina_contract::Identifier;
use cloacina_contract::manifest::{RetryPolicy, TaskDeclaration};
use cloacina_runtime::{FunctionPlugin, PackageRef, TenantId, Workflow};
use cloacina_server::{Limits, RunningServer, ServerConfig, ServerTls};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The god-mode key every test server starts with.
pub const GOD_KEY: &str = "clk_testtesttesttesttesttesttesttest";

pub struct TestServer {
    server: Option<RunningServer>,
    pub addr: SocketAddr,
    pub home: tempfile::TempDir,
}

impl TestServer {
    /// A server on SQLite in a temporary home, with `limits`.
    pub async fn start(limits: Limits) -> TestServer {
        TestServer::start_in(tempfile::tempdir().expect("home"), limits).await
    }

    /// A server on the SQLite databases in `home` (a previous server's).
    pub async fn start_in(home: tempfile::TempDir, limits: Limits) -> TestServer {
        let url = format!("sqlite://{}", home.path().join("cloacina.db").display());
        let host = cloacina_host::HostConfig::new(&url, home.path().join("cache"));
        TestServer::start_with(home, limits, host, false).await
    }

    /// A server on SQLite that does not serve the web console.
    pub async fn start_without_console() -> TestServer {
        let home = tempfile::tempdir().expect("home");
        let url = format!("sqlite://{}", home.path().join("cloacina.db").display());
        let host = cloacina_host::HostConfig::new(&url, home.path().join("cache"));
        TestServer::start_configured(home, Limits::default(), host, false, false, None).await
    }

    /// A server on SQLite serving HTTPS only, with `tls`.
    pub async fn start_tls(tls: ServerTls, limits: Limits) -> TestServer {
        let home = tempfile::tempdir().expect("home");
        let url = format!("sqlite://{}", home.path().join("cloacina.db").display());
        let host = cloacina_host::HostConfig::new(&url, home.path().join("cache"));
        TestServer::start_configured(home, limits, host, false, true, Some(tls)).await
    }

    /// A server in `home` with the host set up as `host`.
    pub async fn start_with(
        home: tempfile::TempDir,
        limits: Limits,
        host: cloacina_host::HostConfig,
        ready_ignores_graphs: bool,
    ) -> TestServer {
        TestServer::start_configured(home, limits, host, ready_ignores_graphs, true, None).await
    }

    async fn start_configured(
        home: tempfile::TempDir,
        limits: Limits,
        host: cloacina_host::HostConfig,
        ready_ignores_graphs: bool,
        console: bool,
        tls: Option<ServerTls>,
    ) -> TestServer {
        let server = cloacina_server::start(ServerConfig {
            host,
            bind: "127.0.0.1:0".parse().expect("address"),
            home: home.path().to_owned(),
            bootstrap_key: Some(GOD_KEY.to_owned()),
            metrics_need_auth: false,
            limits,
            ready_ignores_graphs,
            console,
            tls,
        })
        .await
        .expect("server starts");
        TestServer {
            addr: server.addr(),
            server: Some(server),
            home,
        }
    }

    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().expect("running")
    }

    pub async fn stop(self) {
        self.stop_keeping_home().await;
    }

    /// Stops the server and hands back its home, for another to start in.
    pub async fn stop_keeping_home(mut self) -> tempfile::TempDir {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("stops");
        }
        self.home
    }

    /// A request with `key`, `Connection: close`: status and JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let response = raw(self.addr, request.as_bytes()).await;
        (response.status, response.json())
    }

    /// A new key: `role`, for `tenant` (None: global).
    pub async fn key(&self, role: &str, tenant: Option<&str>) -> (String, String) {
        let path = match tenant {
            Some(tenant) => format!("/v1/tenants/{tenant}/keys"),
            None => "/v1/auth/keys".to_owned(),
        };
        let (status, body) = self
            .call(
                "POST",
                &path,
                GOD_KEY,
                Some(json!({"name": "k", "role": role})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["key"].as_str().expect("key").to_owned(),
            body["id"].as_str().expect("id").to_owned(),
        )
    }

    pub async fn create_tenant(&self, name: &str) {
        let (status, body) = self
            .call("POST", "/v1/tenants", GOD_KEY, Some(json!({"name": name})))
            .await;
        assert_eq!(status, 201, "{body}");
    }

    /// Registers workflow `quick` (one task) in `tenant`, in process.
    pub async fn register_quick_workflow(&self, tenant: &str) {
        let plugin = FunctionPlugin::new().task("only", |_, _| Ok(json!({"done": true})));
        self.register_one_task_workflow(tenant, "quick", plugin)
            .await;
    }

    /// Registers workflow `waiting` in `tenant`: its one task runs until
    /// it is asked to stop (30 s at most).
    pub async fn register_waiting_workflow(&self, tenant: &str) {
        let plugin = FunctionPlugin::new().task("only", |_, control| {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while !control.should_stop() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(cloacina_loader::TaskFailure::Cancelled)
        });
        self.register_one_task_workflow(tenant, "waiting", plugin)
            .await;
    }

    /// Registers workflow `name` of one task, `only`, run by `plugin`.
    async fn register_one_task_workflow(&self, tenant: &str, name: &str, plugin: FunctionPlugin) {
        let tenant = self
            .server()
            .host()
            .tenant(&TenantId::new(tenant).expect("name"))
            .await
            .expect("tenant");
        let task = TaskDeclaration {
            id: Identifier::new("only").expect("id"),
            description: String::new(),
            dependencies: Vec::new(),
            retry: RetryPolicy::default(),
            timeout_ms: None,
            invokes: None,
        };
        let package = PackageRef {
            name: name.into(),
            version: semver::Version::new(1, 0, 0),
        };
        tenant
            .runner()
            .register_workflow(
                Workflow::new(name, package, vec![task], Arc::new(plugin)).expect("workflow"),
            )
            .expect("registers");
    }

    /// Starts `quick` in `tenant`; its execution id.
    pub async fn execute_quick(&self, tenant: &str, key: &str) -> String {
        self.execute(tenant, "quick", key).await
    }

    /// Starts `workflow` in `tenant` with an empty context: its id.
    pub async fn execute(&self, tenant: &str, workflow: &str, key: &str) -> String {
        let (status, body) = self
            .call(
                "POST",
                &format!("/v1/tenants/{tenant}/workflows/{workflow}/execute"),
                key,
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        body["execution_id"].as_str().expect("id").to_owned()
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }
}

/// Sends `request` on a fresh connection and reads until the server
/// closes it.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    stream.write_all(request).await.expect("writes");
    read_response(&mut stream).await
}

/// Reads one whole response (the server closes, or Content-Length says).
pub async fn read_response(stream: &mut TcpStream) -> Response {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(response) = parse(&buffer) {
            return response;
        }
        match tokio::time::timeout(Duration::from_secs(20), stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(read)) => buffer.extend_from_slice(&chunk[..read]),
            Err(_) => panic!("no response within 20 s"),
        }
    }
    parse(&buffer).unwrap_or_else(|| {
        panic!(
            "an incomplete response: {:?}",
            String::from_utf8_lossy(&buffer)
        )
    })
}

fn parse(buffer: &[u8]) -> Option<Response> {
    let end = buffer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let body = &buffer[end + 4..];
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    (body.len() >= length).then(|| Response {
        status,
        head,
        body: body[..length].to_vec(),
    })
}

/// The GET of /health on a new connection, within `patience`.
pub async fn health_within(addr: SocketAddr, patience: Duration) -> Option<u16> {
    tokio::time::timeout(
        patience,
        raw(
            addr,
            b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
        ),
    )
    .await
    .ok()
    .map(|response| response.status)
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens the WebSocket at `path` with a Bearer `key`; the HTTP status when
/// the upgrade is refused.
pub async fn connect(server: &TestServer, path: &str, key: &str) -> Result<Socket, u16> {
    let url = format!("ws://{}{path}", server.addr);
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("header"),
    );
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(error) => panic!("cannot connect: {error}"),
    }
}

/// What the server sent next: a JSON frame, or its close code.
#[derive(Debug)]
pub enum Next {
    Frame(Value),
    Closed(Option<u16>),
}

pub async fn next(socket: &mut Socket) -> Next {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
            Err(_) => panic!("nothing from the server in 10 s"),
            Ok(Some(Ok(Message::Text(text)))) => {
                return Next::Frame(serde_json::from_str(text.as_str()).expect("JSON"));
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Next::Closed(frame.map(|f: CloseFrame| u16::from(f.code)));
            }
            Ok(Some(Ok(_))) => {}
            Ok(None) | Ok(Some(Err(_))) => return Next::Closed(None),
        }
    }
}
