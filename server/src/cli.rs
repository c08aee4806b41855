//! The command line of `cloacinactl server start` and `cloacina-server`.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use clap::Args;
use cloacina_graphs::GraphConfig;
use cloacina_host::HostConfig;
use cloacina_runtime::RunnerConfig;

use crate::{Limits, ServerConfig, ServerTls, TlsFiles};

/// The long help of `server start` (and of `cloacina-server`).
pub const SERVE_ABOUT: &str =
    "Run a host and serve its HTTP + WebSocket API until Ctrl-C or SIGTERM.

Keeps what is loaded equal to what the registry holds: packages
uploaded (over HTTP or `cloacinactl package upload`) or dropped into
--watch-dir are verified against the trust store (`cloacinactl trust`),
loaded and registered; cron schedules and triggers fire; a removed or
replaced version stops taking new executions and is unloaded once its
running ones finish. Executions and tasks are logged as they happen.

On first start with no API keys, an admin key is created and written to
HOME/bootstrap-key (mode 0600), or --bootstrap-key is used.

  cloacinactl trust add keys/release.pub --home ./host
  cloacinactl server start --home ./host --watch-dir ./drop
  export CLOACINA_API_KEY=$(cat ./host/bootstrap-key)
  cloacinactl package upload etl.cloacina --server http://127.0.0.1:8080

With --tls-cert and --tls-key it serves HTTPS only; SIGHUP re-reads both
files (a renewed certificate is used for new connections; files that do
not load are logged and the certificate in use stays). Clients trust a
private CA or a self-signed certificate with --ca-cert.

On SIGTERM it stops taking requests, closes sockets, lets running tasks
finish (up to --shutdown-grace) and exits 0.";

/// The flags of `cloacinactl server start` and `cloacina-server`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "CLOACINA_BIND")]
    pub bind: SocketAddr,

    /// The host's data directory: its SQLite database (unless
    /// --database-url), the package cache, the bootstrap key
    /// [default: $CLOACINA_HOME, else ~/.cloacina].
    #[arg(long, value_name = "DIR", env = "CLOACINA_HOME")]
    pub home: Option<PathBuf>,

    /// The host's database (sqlite://PATH or postgres://...).
    #[arg(long, value_name = "URL", env = "CLOACINA_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Register the .cloacina files put in this directory (a sub-directory
    /// names the tenant; the top level is `public`), unregister those
    /// removed. Bad files are moved to DIR/.rejected/ with a .reason file.
    #[arg(long, value_name = "DIR", env = "CLOACINA_WATCH_DIR")]
    pub watch_dir: Option<PathBuf>,

    /// Refuse unsigned packages (uploads, the drop directory, at load).
    #[arg(long, env = "CLOACINA_REQUIRE_SIGNATURES")]
    pub require_signatures: bool,

    /// The first admin key (clk_...), used when the database has no keys.
    #[arg(
        long,
        value_name = "KEY",
        env = "CLOACINA_BOOTSTRAP_KEY",
        hide_env_values = true
    )]
    pub bootstrap_key: Option<String>,

    /// Ask for an API key on /metrics too.
    #[arg(long)]
    pub metrics_auth: bool,

    /// Leave crashed computation graphs out of /ready (which then checks
    /// the database only). Behind a load balancer with several hosts, one
    /// bad package would otherwise take every host out of the pool; the
    /// crashed graphs stay visible in /v1/health/graphs.
    #[arg(long)]
    pub ready_ignores_graphs: bool,

    /// Do not serve the web console (`/ui/`): the API alone.
    #[arg(long)]
    pub no_console: bool,

    /// Serve HTTPS only, with this certificate chain (PEM: the server's
    /// certificate first, then intermediates). Re-read on SIGHUP.
    #[arg(
        long,
        value_name = "PEM",
        env = "CLOACINA_TLS_CERT",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    /// Re-read on SIGHUP.
    #[arg(
        long,
        value_name = "PEM",
        env = "CLOACINA_TLS_KEY",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Load native libraries into the server process instead of one
    /// `cloacina-plugin-worker` process each: calls are faster, but a
    /// library that crashes takes the server down.
    #[arg(long)]
    pub in_process: bool,

    /// Tasks this host runs at once, per tenant. Tasks mostly wait (on I/O,
    /// on worker processes), so a server runs many; each native library in
    /// a worker process still runs one call at a time.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_concurrent_tasks: usize,

    /// A full reconcile pass at least this often (seconds), besides the
    /// ones uploads, dropped files and other hosts trigger.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub resync: u64,

    /// How long running tasks may finish after SIGTERM (seconds).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub shutdown_grace: u64,

    /// Connections (and WebSockets) open at once; at the cap new ones wait
    /// in the kernel's backlog. Keep it below `ulimit -n`.
    #[arg(long, default_value_t = Limits::default().max_connections, value_name = "N")]
    pub max_connections: usize,

    /// A request head must arrive within this long (seconds); also how long
    /// an idle keep-alive connection is kept.
    #[arg(long, default_value_t = Limits::default().head_timeout.as_secs(), value_name = "SECONDS")]
    pub head_timeout: u64,

    /// The largest package upload accepted (MiB).
    #[arg(long, default_value_t = Limits::default().max_upload_bytes >> 20, value_name = "MIB")]
    pub max_upload_mib: u64,

    /// Uploads verified at once; more are answered 503 with Retry-After.
    #[arg(long, default_value_t = Limits::default().concurrent_uploads, value_name = "N")]
    pub concurrent_uploads: usize,

    /// Requests with an unknown API key one client address may make a
    /// minute (a burst of as many); past it the address gets 429 with
    /// Retry-After until its budget refills, whatever key it sends.
    #[arg(long, default_value_t = Limits::default().auth_failures_per_minute, value_name = "N")]
    pub auth_failures_per_minute: NonZeroU32,

    /// Requests one API key may make a second (a burst of as many); more
    /// get 429 with Retry-After. Unlimited when not given.
    #[arg(long, value_name = "N")]
    pub key_requests_per_second: Option<NonZeroU32>,

    /// How long a graph's reactor lease lasts unrenewed: after a host dies,
    /// another takes its graphs over within this (seconds, fractions
    /// allowed, at least 0.2). Renewed every third of it; matters only with
    /// several hosts on one PostgreSQL database.
    #[arg(long, default_value = "5", value_name = "SECONDS", value_parser = lease_seconds)]
    pub graph_lease_ttl: Duration,

    /// How long this host's lease on the tasks it runs lasts unrenewed
    /// (seconds, fractions allowed, at least 0.2; renewed every third of
    /// it). After a host dies its running tasks run again once the lease
    /// expires: on PostgreSQL that is also how long a host restarted after
    /// SIGKILL waits for its own earlier tasks. SQLite takes them back at
    /// start.
    #[arg(long, default_value = "30", value_name = "SECONDS", value_parser = lease_seconds)]
    pub lease_ttl: Duration,
}

/// The longest lease: a host dead that long is surely dead, and the lease
/// timers stay far from overflowing.
const MAX_LEASE_SECONDS: f64 = 86_400.0;

/// `--graph-lease-ttl`, `--lease-ttl`: a number of seconds, whole or not, from 0.2 up.
fn lease_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !seconds.is_finite() || seconds < 0.2 {
        return Err(format!("`{text}`: the lease lasts at least 0.2 seconds"));
    }
    if seconds > MAX_LEASE_SECONDS {
        return Err(format!(
            "`{text}`: the lease lasts at most {MAX_LEASE_SECONDS} seconds (a day)"
        ));
    }
    Duration::try_from_secs_f64(seconds).map_err(|error| error.to_string())
}

impl ServeArgs {
    /// The bounds these flags set; the rest at their defaults.
    pub fn limits(&self) -> Limits {
        Limits {
            max_connections: self.max_connections.max(1),
            head_timeout: Duration::from_secs(self.head_timeout.max(1)),
            max_upload_bytes: self.max_upload_mib.max(1) << 20,
            concurrent_uploads: self.concurrent_uploads.max(1),
            auth_failures_per_minute: self.auth_failures_per_minute,
            key_requests_per_second: self.key_requests_per_second,
            ..Limits::default()
        }
    }

    /// The certificate and key files, when both are given (clap makes
    /// sure it is both or neither).
    pub fn tls_files(&self) -> Option<TlsFiles> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        }
    }

    pub fn home_dir(&self) -> anyhow::Result<PathBuf> {
        self.home
            .clone()
            .or_else(cloacina_defaults::data_dir)
            .ok_or_else(|| anyhow!("no --home given and $HOME is not set"))
    }

    pub fn config(&self) -> anyhow::Result<ServerConfig> {
        let home = self.home_dir()?;
        let url = match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", home.join("cloacina.db").display()),
        };
        // Read now: a certificate that cannot serve fails the start, before
        // the host opens anything.
        let tls = self
            .tls_files()
            .map(ServerTls::load)
            .transpose()
            .context("cannot use the TLS certificate")?;
        let worker_binary = if self.in_process {
            None
        } else {
            Some(cloacina_defaults::worker_binary().ok_or_else(|| {
                anyhow!(
                    "cloacina-plugin-worker is not installed next to this program; install it (`cargo build -p cloacina-loader`) or pass --in-process"
                )
            })?)
        };
        Ok(ServerConfig {
            host: HostConfig {
                worker_binary,
                require_signatures: self.require_signatures,
                watch_dir: self.watch_dir.clone(),
                resync_interval: Duration::from_secs(self.resync.max(1)),
                runner: RunnerConfig {
                    max_concurrent_tasks: self.max_concurrent_tasks.max(1),
                    shutdown_grace: Duration::from_secs(self.shutdown_grace),
                    lease_ttl: self.lease_ttl,
                    ..RunnerConfig::default()
                },
                graphs: GraphConfig {
                    lease_ttl: self.graph_lease_ttl,
                    ..GraphConfig::default()
                },
                ..HostConfig::new(url, home.join("cache"))
            },
            bind: self.bind,
            home,
            bootstrap_key: self.bootstrap_key.clone(),
            metrics_need_auth: self.metrics_auth,
            limits: self.limits(),
            ready_ignores_graphs: self.ready_ignores_graphs,
            console: !self.no_console,
            tls,
        })
    }
}

/// Runs the server in the foreground until Ctrl-C or SIGTERM.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let database = cloacina_runtime::database::redact(&config.host.database_url);
        let native = if config.host.worker_binary.is_some() {
            "worker processes"
        } else {
            "in process"
        };
        let watch_dir = config.host.watch_dir.clone();
        // Listened for before anything starts: from here on a SIGHUP never
        // stops the server, TLS or not.
        let hangups = Hangups::listen()?;
        let server = crate::start(config).await?;
        let reloading = tokio::spawn(hangups.reload(server.tls().cloned()));
        tracing::info!(
            address = %server.addr(),
            %database,
            ?watch_dir,
            native,
            "host running; Ctrl-C or SIGTERM stops it"
        );
        stop_signal().await;
        reloading.abort();
        tracing::info!("stopping: no new requests or work; running tasks get their grace period");
        server.stop().await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// SIGHUPs, where there are such signals.
struct Hangups {
    #[cfg(unix)]
    signals: tokio::signal::unix::Signal,
}

impl Hangups {
    fn listen() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signals = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
            Ok(Hangups { signals })
        }
        #[cfg(not(unix))]
        Ok(Hangups {})
    }

    /// On every SIGHUP, re-reads the TLS certificate and key (off the
    /// async workers; a failure keeps the certificate in use), or says
    /// there is nothing to reload.
    async fn reload(self, tls: Option<ServerTls>) {
        #[cfg(unix)]
        {
            let mut signals = self.signals;
            while signals.recv().await.is_some() {
                match &tls {
                    Some(tls) => reload(tls).await,
                    None => tracing::info!("SIGHUP: nothing to reload (no --tls-cert)"),
                }
            }
        }
        #[cfg(not(unix))]
        drop((self, tls));
    }
}

/// One reload, logged either way.
async fn reload(tls: &ServerTls) {
    let reloading = tls.clone();
    let cert = tls.files().cert.display().to_string();
    match tokio::task::spawn_blocking(move || reloading.reload()).await {
        Ok(Ok(())) => tracing::info!(%cert, "reloaded the TLS certificate"),
        Ok(Err(error)) => tracing::error!(
            error = %cloacina_contract::explain(&error),
            "cannot reload the TLS certificate; keeping the one in use"
        ),
        Err(error) => tracing::error!(
            %error,
            "cannot reload the TLS certificate; keeping the one in use"
        ),
    }
}

/// Ctrl-C, or SIGTERM where there is one.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::lease_seconds;

    #[test]
    fn a_graph_lease_ttl_is_whole_or_fractional_seconds() {
        assert_eq!(lease_seconds("5"), Ok(Duration::from_secs(5)));
        assert_eq!(lease_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(lease_seconds("86400"), Ok(Duration::from_secs(86_400)));
        for refused in ["0", "0.1", "-2", "nan", "inf", "two", "86401", "1e30"] {
            assert!(lease_seconds(refused).is_err(), "{refused}");
        }
    }
}
