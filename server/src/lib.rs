//! The HTTP + WebSocket server over a cloacina host, wire-compatible with
//! the `cloacina-client` 0.8 SDK: API keys and roles, tenants, workflow
//! packages, executions and their events (REST and the delivery socket),
//! schedules, the hosts serving each tenant, metrics and the OpenAPI
//! document.
//!
//! `start` binds, bootstraps the first admin key, starts the host and
//! serves (HTTPS only when given a [`ServerTls`]); `RunningServer::stop`
//! stops taking requests, closes sockets and drains the host.

mod audit;
mod auth;
mod bootstrap;
mod cli;
mod console;
mod ended;
mod error;
mod limits;
mod listener;
mod metrics;
mod routes;
mod state;
mod tls;
mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use cloacina_host::{Host, HostConfig};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use audit::{Action as AuditAction, AuditLog};
pub use auth::Role;
pub use bootstrap::{OfflineKey, create_key_offline};
pub use cli::{SERVE_ABOUT, ServeArgs, run};
pub use limits::Limits;
pub use routes::openapi::spec as openapi_document;
pub use tls::{ServerTls, TlsError, TlsFiles};

/// Everything a server needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub host: HostConfig,
    pub bind: SocketAddr,
    /// Where the bootstrap key file is written.
    pub home: PathBuf,
    /// The first admin key, when none exists yet; generated if None.
    pub bootstrap_key: Option<String>,
    /// `/metrics` needs a key.
    pub metrics_need_auth: bool,
    /// What clients may hold at once, and for how long.
    pub limits: Limits,
    /// `/ready` looks at the platform only (the database), not at crashed
    /// computation graphs.
    pub ready_ignores_graphs: bool,
    /// Serve the web console at `/ui/`.
    pub console: bool,
    /// Serve HTTPS only, with this certificate (`ServerTls::load`); None:
    /// plain HTTP.
    pub tls: Option<ServerTls>,
}

/// A server accepting requests.
pub struct RunningServer {
    addr: SocketAddr,
    state: Arc<state::AppState>,
    tls: Option<ServerTls>,
    stop: watch::Sender<bool>,
    serving: JoinHandle<()>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Binds `config.bind`, starts the host and serves until stopped.
pub async fn start(mut config: ServerConfig) -> anyhow::Result<RunningServer> {
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    // What the hosts view shows of this host: where it answers (the port
    // bound, when 0 was asked for) and the server's version.
    config.host.identity.address = Some(addr.to_string());
    config.host.identity.version = env!("CARGO_PKG_VERSION").to_owned();
    let host = Host::start(config.host.clone())
        .await
        .context("cannot start the host")?;
    let public = host
        .tenant(&cloacina_runtime::TenantId::public())
        .await
        .context("cannot open the public tenant")?;
    let keys = auth::KeyStore::open(public.runner().database())
        .await
        .context("cannot open the key store")?;
    bootstrap::ensure_admin_key(&keys, &config.home, config.bootstrap_key.as_deref()).await?;
    let audit = audit::AuditLog::open(public.runner().database())
        .await
        .context("cannot open the audit log")?;
    let tickets = ws::Tickets::open(
        public.runner().database(),
        keys.clone(),
        ws::TICKET_TTL,
        config.limits.tickets_per_key,
    )
    .await
    .context("cannot open the WebSocket ticket store")?;
    let (stop, stopping) = watch::channel(false);
    let slots = listener::Slots::new(config.limits.max_connections);
    let host = Arc::new(host);
    let metrics = metrics::Metrics::new(host.stats(), &config.host.graphs.metrics);
    let state = Arc::new(state::AppState {
        host,
        auth: auth::Authenticator::new(keys),
        audit,
        throttle: auth::Throttle::new(
            config.limits.auth_failures_per_minute,
            config.limits.key_requests_per_second,
        ),
        tickets,
        deliveries: ws::Deliveries::default(),
        sockets: ws::Sockets::new(config.limits.sockets_per_key, slots.clone()),
        uploads: routes::workflows::UploadGate::new(&config.limits),
        metrics,
        require_signatures: config.host.require_signatures,
        metrics_need_auth: config.metrics_need_auth,
        ready_ignores_graphs: config.ready_ignores_graphs,
        console: config.console,
        declarations: Default::default(),
        ended: Default::default(),
        limits: config.limits.clone(),
        stopping: stopping.clone(),
    });
    let router = routes::router(state.clone());
    let limits = config.limits.clone();
    let tls = config.tls.clone();
    let serving = tokio::spawn(async move {
        listener::serve(listener, router, &limits, slots, tls, stopping).await;
    });
    // Scripts and tests read the address from this line, as it is.
    tracing::info!(%addr, "serving the HTTP API");
    if let Some(tls) = &config.tls {
        tracing::info!(
            cert = %tls.files().cert.display(),
            "HTTPS only (TLS); SIGHUP re-reads the certificate and key"
        );
    }
    tracing::info!(host = %state.host.identity().id, "this host's id");
    Ok(RunningServer {
        addr,
        state,
        tls: config.tls,
        stop,
        serving,
    })
}

impl RunningServer {
    /// The host behind the API (to register in-process workflows, say).
    pub fn host(&self) -> &Host {
        &self.state.host
    }

    /// The address bound (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The TLS configuration, when serving HTTPS: [`ServerTls::reload`]
    /// takes up a renewed certificate for new connections.
    pub fn tls(&self) -> Option<&ServerTls> {
        self.tls.as_ref()
    }

    /// Stops taking requests, closes sockets, waits for requests in
    /// flight, then drains the host (running tasks get their grace period).
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.serving.await.context("the server task failed")?;
        // Sockets still closing may hold the state: the host drains anyway.
        self.state.host.shutdown().await;
        Ok(())
    }
}
