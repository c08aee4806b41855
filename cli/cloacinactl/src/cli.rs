//! The command line, as clap sees it. Help texts here are the user manual.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  any other failure (I/O, unexpected state)
  2  invalid command line; `graph push`: a line that is not JSON
  3  the package failed verification (unsigned, bad signature, untrusted or
     revoked key, a file that differs from the manifest, an unlisted or missing file),
     checked locally or refused by a server alike
  4  not a usable package (not an archive, refused by the safe reader, bad manifest)
  5  the plugin crate could not be built or its declaration is invalid
  6  a key file is unusable (unreadable, malformed, readable by others)
  7  `run`: the workflow ran and failed (or was cancelled); `graph fire`: the
     firing failed
  8  `run`: the package could not be loaded (artifact refused, ABI mismatch,
     declaration differs from the manifest) or its workflows not registered
  9  `package upload`: that name and version is registered with other bytes;
     `trust add`: the key is revoked; `graph fire`: the graph is paused
 10  the server refused the API key (401) or its role or tenant (403)
 11  the server has no such thing (404)
 75  try again later: the host's database or disk, or the server, could not
     decide now (503, 429, unreachable); nothing was refused for good
130  `run`: a second Ctrl-C (the first cancels the execution: exit 7)

With --json, results go to stdout as one JSON object; a failure prints
{\"error\": ..., \"code\": ..., \"exit_code\": ...} there as well.

Set CLOACINA_LOG=debug for diagnostic logs on stderr.";

/// Build, sign, verify, inspect and run cloacina workflow packages.
///
/// A typical first session:
///
///   cloacinactl key generate release --out keys/
///   cloacinactl pack sample-packages/etl --sign keys/release.key -o etl.cloacina
///   cloacinactl package verify etl.cloacina --trusted-key keys/release.pub
#[derive(Debug, Parser)]
#[command(name = "cloacinactl", version, after_long_help = EXIT_CODES, verbatim_doc_comment)]
pub struct Cli {
    /// Print results as JSON on stdout (stable field names, for scripts).
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a plugin crate: a two-task workflow with typed context and a
    /// test, ready to build, test, pack, sign and run.
    ///
    ///   cloacinactl new orders
    ///   cd orders && cargo test && cloacinactl pack . -o orders.cloacina
    ///
    /// The guide: docs/AUTHORING.md.
    New(NewArgs),

    /// Create and show signing keys.
    #[command(subcommand)]
    Key(KeyCommand),

    /// Build a plugin crate and write a signed `.cloacina` package.
    ///
    /// Runs `cargo build --release` on the crate (written with the
    /// cloacina-plugin SDK), loads the built library to read the tasks,
    /// workflows, schedules and graphs it declares, and writes a
    /// reproducible archive. With --sign the
    /// manifest (which pins every file's SHA-256) is signed with ed25519.
    Pack(PackArgs),

    /// Verify, inspect and upload package files.
    #[command(subcommand)]
    Package(PackageCommand),

    /// Manage the keys a host trusts to sign packages.
    #[command(subcommand)]
    Trust(TrustCommand),

    /// Verify a package, load it and run one of its workflows, printing each
    /// event as it happens and the final context.
    ///
    /// The author's inner loop: an embedded runtime on a temporary SQLite
    /// database (or --database-url), the package checked exactly as a host
    /// checks it. Exit 0 when the workflow completes, 7 when it fails.
    ///
    ///   cloacinactl run etl.cloacina --trusted-key keys/release.pub
    ///   cloacinactl run etl.cloacina etl --context '{"input": [1, 2, 3]}' --allow-unsigned
    ///
    /// A run that was killed can be finished: give the same --database-url
    /// and --resume EXECUTION_ID; completed tasks do not run again.
    Run(RunArgs),

    /// Run a host: packages from its registry and drop directory loaded,
    /// kept current and run, behind the HTTP + WebSocket API.
    #[command(subcommand)]
    Server(ServerCommand),

    /// Run and inspect workflows on a server (HTTP client).
    #[command(subcommand)]
    Workflow(WorkflowCommand),

    /// List and show executions on a server.
    #[command(subcommand)]
    Execution(ExecutionCommand),

    /// Watch and drive a server's computation graphs: list and show them,
    /// push events to their accumulators, fire, pause and resume them,
    /// read their firing log.
    ///
    /// A package declares its graphs (`computation_graphs` in `plugin!`);
    /// a host runs them once the package is uploaded. Accumulators take
    /// events; a graph's reactor (named like the graph) fires its nodes
    /// when its criterion holds, and logs each firing.
    #[command(
        subcommand,
        after_long_help = "Examples:\n  \
            cloacinactl graph list\n  \
            cloacinactl graph show climate\n  \
            cloacinactl graph push temperature readings.jsonl\n  \
            cloacinactl graph fire counter --with '{\"ticks\": {\"n\": 7}}'\n  \
            cloacinactl graph firings climate --limit 5"
    )]
    Graph(GraphCommand),

    /// Manage a server's tenants (god-mode key).
    #[command(subcommand)]
    Tenant(TenantCommand),

    /// List the hosts serving a server's tenants: where each runs, whether
    /// it is alive, and what work it holds.
    #[command(
        subcommand,
        after_long_help = "Example:\n  cloacinactl host list --tenant acme"
    )]
    Host(HostCommand),

    /// Manage a server's API keys (admin key).
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),

    /// Read a server's audit log (god-mode key): every change to keys,
    /// tenants and packages, newest first.
    ///
    /// One line per change: when, the key that made it, the address it came
    /// from, what was done (key.create, key.revoke, tenant.create,
    /// tenant.remove, package.upload, package.delete), the tenant and what
    /// it was done to. --json gives every field, details included.
    #[command(after_long_help = "Examples:\n  \
        cloacinactl audit\n  \
        cloacinactl audit --limit 200 --json")]
    Audit {
        /// Entries to show (1 to 1000).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Newest entries to skip.
        #[arg(long, default_value_t = 0)]
        offset: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The crate's name (also its workflow's, with `-` as `_`).
    pub name: String,

    /// Where to create it [default: ./NAME].
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,

    /// The cloacina-plugin SDK's directory [default: the one this program
    /// was built from].
    #[arg(long, value_name = "DIR")]
    pub sdk: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Run a host and serve its HTTP + WebSocket API in the foreground.
    #[command(long_about = cloacina_server::SERVE_ABOUT)]
    Start(cloacina_server::ServeArgs),
}

/// Which artifact of a package `run` loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Prefer {
    /// The shared library for this machine (loaded in process).
    Native,
    /// The WebAssembly component (sandboxed).
    Wasm,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The .cloacina file.
    pub file: PathBuf,

    /// The workflow to run [default: the package's only workflow].
    pub workflow: Option<String>,

    /// The input context, a JSON object.
    #[arg(
        long,
        value_name = "JSON",
        default_value = "{}",
        conflicts_with = "resume"
    )]
    pub context: String,

    /// Which artifact to load when the package has both [default: native
    /// when there is one for this machine, else wasm].
    #[arg(long, value_enum)]
    pub prefer: Option<Prefer>,

    /// Run a native library in a worker process of its own
    /// (`cloacina-plugin-worker`, found next to this program): a task that
    /// crashes or ignores its deadline then fails alone instead of ending
    /// the run.
    #[arg(long)]
    pub isolate: bool,

    /// Do not print the tasks' log lines (`ctx.log`); they are still kept
    /// as `task_log` events.
    #[arg(long)]
    pub no_logs: bool,

    /// Run on this database (sqlite://PATH or postgres://...) instead of a
    /// temporary SQLite file. Executions it holds that were cut short are
    /// resumed.
    #[arg(long, value_name = "URL", env = "CLOACINA_DATABASE_URL")]
    pub database_url: Option<String>,

    /// The tenant whose database (SQLite file or PostgreSQL schema) to run in.
    #[arg(long, default_value = "public")]
    pub tenant: String,

    /// Tasks this process runs at once.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_concurrent_tasks: usize,

    /// Seconds without a heartbeat after which this process is presumed
    /// dead and its running tasks run again on another host (PostgreSQL).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub lease_ttl: u64,

    /// Wait for this execution (of an earlier, interrupted run on the same
    /// --database-url, or one another host is running there) instead of
    /// starting one. This process helps run it.
    #[arg(long, value_name = "EXECUTION_ID", requires = "database_url")]
    pub resume: Option<String>,

    #[command(flatten)]
    pub trust: TrustArgs,

    /// Accept an unsigned package (its files are still checked against the manifest).
    #[arg(long)]
    pub allow_unsigned: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate an ed25519 key pair: NAME.key (private, mode 0600) and
    /// NAME.pub (share this one with whoever verifies your packages).
    Generate {
        /// Name of the key; the files are NAME.key and NAME.pub.
        name: String,
        /// Directory to write the files into (created if missing).
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Show the key id and public key of a .key or .pub file.
    Show {
        /// The key file.
        file: PathBuf,
    },
}

/// Which artifacts `pack` builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PackTarget {
    /// A shared library for this machine's target triple.
    Native,
    /// A WebAssembly component (wasm32-unknown-unknown + wit-component).
    Wasm,
    /// Both.
    All,
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// The plugin crate: a directory with a Cargo.toml building a cdylib with the cloacina-plugin SDK.
    pub crate_dir: PathBuf,

    /// Sign the package with this private key file (from `key generate`).
    #[arg(long, value_name = "KEY_FILE")]
    pub sign: Option<PathBuf>,

    /// Which artifacts to build.
    #[arg(long, value_enum, default_value_t = PackTarget::Native)]
    pub target: PackTarget,

    /// Where to write the package [default: ./NAME-VERSION.cloacina].
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum PackageCommand {
    /// Check a package's signature and every file against its manifest.
    ///
    /// Exit 0 and a one-line summary when the signature is valid, made by a
    /// trusted key that is not revoked, and every file matches the manifest.
    Verify(VerifyArgs),

    /// Show a package's manifest, artifacts and signer.
    ///
    /// The archive is read with the same safety rules as `verify`; the
    /// signer is shown as claimed unless trusted keys are given.
    Inspect(InspectArgs),

    /// Register a package with a host's registry: over HTTP with --server
    /// (or CLOACINA_SERVER), else directly in its --home or --database-url.
    /// Verified against the host's trust store (`cloacinactl trust`).
    ///
    /// The same bytes twice is not an error (`created: false`); other bytes
    /// under a registered name and version are refused (exit 9): publish a
    /// new version instead.
    Upload(UploadArgs),

    /// List a tenant's packages and their workflows on a server.
    List(ClientArgs),

    /// Unregister a package version on a server. Executions running on it
    /// finish there (or, with --cancel, are cancelled); the command says
    /// which.
    Delete {
        name: String,
        version: String,
        /// Cancel the executions still running on it.
        #[arg(long)]
        cancel: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Where the server is and who calls it. Each value comes from the flag,
/// else the environment, else the profile file (TOML: `server`, `api_key`,
/// `tenant`, `ca_cert`), else the default.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The server [default: http://127.0.0.1:8080].
    #[arg(long, value_name = "URL", env = "CLOACINA_SERVER")]
    pub server: Option<String>,

    /// The API key (clk_...).
    #[arg(
        long,
        value_name = "KEY",
        env = "CLOACINA_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,

    /// The tenant [default: public].
    #[arg(long, value_name = "TENANT", env = "CLOACINA_TENANT")]
    pub tenant: Option<String>,

    /// Trust an https:// server only if its certificate comes from one in
    /// this PEM file (a private CA, or the server's own self-signed
    /// certificate) instead of the public certificate authorities.
    #[arg(long, value_name = "PEM", env = "CLOACINA_CA_CERT")]
    pub ca_cert: Option<PathBuf>,

    /// The profile file [default: $CLOACINA_HOME/client.toml, else
    /// ~/.cloacina/client.toml].
    #[arg(long, value_name = "FILE", env = "CLOACINA_PROFILE")]
    pub profile: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum WorkflowCommand {
    /// Start a workflow on a server; with --follow, print its events as
    /// the server pushes them (the delivery WebSocket; polling where that
    /// cannot be opened) and exit 0 when it completes, 7 when it fails.
    ///
    ///   cloacinactl workflow run etl --context '{"input": [1, 2, 3]}' --follow
    Run {
        /// The workflow's name.
        name: String,
        /// The context, a JSON object.
        #[arg(long, default_value = "{}")]
        context: String,
        /// Print events until the execution ends, then its final context
        /// (or the failing task and its error).
        #[arg(long)]
        follow: bool,
        /// Run this version of the workflow's package instead of the live
        /// one (it must be registered and not being replaced).
        #[arg(long, value_name = "VERSION")]
        version: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A workflow's versions, tasks and load status.
    Show {
        /// The workflow's (or its package's) name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExecutionCommand {
    /// Recent executions, newest first.
    List {
        /// Running, Completed, Failed or Cancelled.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        workflow: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long, default_value_t = 0)]
        offset: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// One execution: status, result, tasks.
    Show {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// One execution's events.
    Events {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// One execution's task log lines (`ctx.log`), in order, as
    /// `[task#attempt] message`.
    Logs {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Cancel a running execution: its waiting tasks end cancelled, its
    /// running tasks are asked to stop on whichever host runs them, and
    /// no further task starts. Cancelling an ended execution changes
    /// nothing (and says so).
    Cancel {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum GraphCommand {
    /// The graphs the key sees: health, paused or not, firings, events
    /// waiting, the last firing, and the package declaring each.
    ///
    /// A key of no tenant (god mode) sees every tenant's graphs unless
    /// --tenant names one.
    List(ClientArgs),

    /// One graph: health, its reactor's reaction mode and input strategy,
    /// its accumulators with kind and status, and its nodes as
    /// `node <- inputs` (`node.field`: that field of node's output).
    #[command(after_long_help = "Example:\n  cloacinactl graph show climate")]
    Show {
        /// The graph's name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },

    /// Push events to an accumulator: one JSON document per line of FILE
    /// (or standard input), sent pipelined over the accumulator socket and
    /// acknowledged by the server once durable.
    ///
    /// Every line is checked before anything is sent: a line that is not
    /// JSON (or is over the 1 MiB event limit) stops the command with exit
    /// 2, naming the line. Blank lines are skipped. The command ends when
    /// the server has acknowledged every event (`acked N events`); an
    /// event the server rejects is reported with its line and makes the
    /// exit code non-zero. If the socket fails midway, the error says
    /// through which line events are durable: resend the lines after it.
    /// Every graph of the tenant with an accumulator of that name receives
    /// the events.
    #[command(after_long_help = "Examples:\n  \
        cloacinactl graph push temperature readings.jsonl\n  \
        echo '{\"celsius\": 31.5}' | cloacinactl graph push temperature --json")]
    Push {
        /// The accumulator's name.
        accumulator: String,
        /// A file of JSON lines; `-`: standard input.
        #[arg(default_value = "-")]
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },

    /// Fire a graph now and print the firing: ok or its error, and each
    /// node's output.
    ///
    /// Without --with, the graph fires on the values its accumulators hold
    /// (force_fire); with --with, every source named gets that value first
    /// (fire_with). Answered once the firing is in the firing log. A
    /// paused graph does not fire (exit 9); a failed firing exits 7.
    #[command(after_long_help = "Examples:\n  \
        cloacinactl graph fire counter\n  \
        cloacinactl graph fire counter --with '{\"ticks\": {\"n\": 7}}'")]
    Fire {
        /// The graph's name.
        name: String,
        /// A JSON object: each source's (accumulator's) new value.
        #[arg(long = "with", value_name = "JSON")]
        with_inputs: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },

    /// Pause a graph: its accumulators still take events, but it does not
    /// fire until `graph resume` (kept across server restarts).
    Pause {
        /// The graph's name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },

    /// Resume a paused graph; it fires at once if its criterion holds.
    Resume {
        /// The graph's name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },

    /// A graph's firing log, newest first: when, ok or not, how long,
    /// manual (`graph fire`) or not, and the error or the outputs.
    #[command(after_long_help = "Example:\n  cloacinactl --json graph firings climate --limit 1")]
    Firings {
        /// The graph's name.
        name: String,
        /// At most this many firings (1 to 1000).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant (a god-mode key): a PostgreSQL schema and login role,
    /// or a SQLite file.
    Create {
        name: String,
        /// The role's password [default: generated, never shown].
        #[arg(long)]
        password: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    List(ClientArgs),
    /// Remove a tenant: its keys are revoked, its work drained, its data
    /// dropped.
    Remove {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// List the hosts serving a tenant; `*` marks the server that answered.
    ///
    /// One line per host, oldest first: its id (the first 8 characters),
    /// address, version, start time, heartbeat age, the tenant's tasks it
    /// runs now and the computation graphs it owns. A host is a server
    /// process: all its tenants share its id. Each renews its lease every
    /// 10 s; one whose heartbeat is older than the lease TTL (30 s) is
    /// presumed dead, and its running tasks run again on another host.
    #[command(after_long_help = "Examples:\n  \
        cloacinactl host list\n  \
        cloacinactl host list --tenant acme --json")]
    List(ClientArgs),
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create an API key; its plaintext is printed once.
    ///
    /// Over HTTP by default. With --home or --database-url the key is
    /// written straight into that host's database (server running or
    /// not): the way back in when every god-mode key is lost.
    ///
    ///   cloacinactl api-key create ops --role write
    ///   cloacinactl api-key create recovery --god --home /var/lib/cloacina
    Create {
        name: String,
        /// admin, write or read.
        #[arg(long, default_value = "read")]
        role: String,
        /// Scope it to this tenant (a god-mode key is needed).
        #[arg(long, value_name = "TENANT")]
        for_tenant: Option<String>,
        /// A god-mode admin key (tenants, tenant keys); with --home or
        /// --database-url only.
        #[arg(long)]
        god: bool,
        /// Write the key into this host's data directory's database.
        #[arg(long, value_name = "DIR")]
        home: Option<PathBuf>,
        /// Write the key into this host database (sqlite://PATH or
        /// postgres://...).
        #[arg(long, value_name = "URL", conflicts_with = "home")]
        database_url: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    List(ClientArgs),
    /// Revoke a key by id; it stops working at once.
    Revoke {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Where a host keeps its data.
#[derive(Debug, Args)]
pub struct HostArgs {
    /// The host's data directory; its database is HOME/cloacina.db
    /// [default: $CLOACINA_HOME, else ~/.cloacina].
    #[arg(long, value_name = "DIR", env = "CLOACINA_HOME")]
    pub home: Option<PathBuf>,

    /// The host's database instead (sqlite://PATH or postgres://...).
    #[arg(
        long,
        value_name = "URL",
        env = "CLOACINA_DATABASE_URL",
        conflicts_with = "home"
    )]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The .cloacina file.
    pub file: PathBuf,

    /// The tenant whose registry receives it.
    #[arg(long, default_value = "public")]
    pub tenant: String,

    /// Refuse an unsigned package (a signed one is always verified).
    #[arg(long)]
    pub require_signatures: bool,

    #[command(flatten)]
    pub host: HostArgs,

    /// Upload over HTTP to this server instead (see the client commands).
    #[arg(long, value_name = "URL", env = "CLOACINA_SERVER", conflicts_with_all = ["home", "database_url"])]
    pub server: Option<String>,

    /// The API key, with --server.
    #[arg(
        long,
        value_name = "KEY",
        env = "CLOACINA_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,

    /// The profile file, with --server.
    #[arg(long, value_name = "FILE", env = "CLOACINA_PROFILE")]
    pub profile: Option<PathBuf>,

    /// With an https:// --server: trust its certificate only if it comes
    /// from one in this PEM file (see the client commands).
    #[arg(long, value_name = "PEM", env = "CLOACINA_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Trust a public key (.pub from `key generate`) to sign packages, for
    /// every tenant or, with --tenant, for one.
    Add {
        /// The public key file.
        pubkey_file: PathBuf,
        /// Trust it for this tenant only.
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        host: HostArgs,
    },
    /// List trusted and revoked keys.
    List {
        #[command(flatten)]
        host: HostArgs,
    },
    /// Revoke a key id for good: its packages stop verifying, and it cannot
    /// be trusted again.
    Revoke {
        /// The key id (from `key show` or `trust list`).
        key_id: String,
        #[command(flatten)]
        host: HostArgs,
    },
}

#[derive(Debug, Args)]
pub struct TrustArgs {
    /// A public key (.pub) whose signatures are trusted. Repeatable.
    #[arg(long = "trusted-key", value_name = "PUBFILE")]
    pub trusted_keys: Vec<PathBuf>,

    /// A key id that is revoked: its signatures fail even if trusted. Repeatable.
    #[arg(long = "revoked-key", value_name = "KEY_ID")]
    pub revoked_keys: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The .cloacina file.
    pub file: PathBuf,

    #[command(flatten)]
    pub trust: TrustArgs,

    /// Accept an unsigned package (its files are still checked against the manifest).
    #[arg(long)]
    pub allow_unsigned: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The .cloacina file.
    pub file: PathBuf,

    #[command(flatten)]
    pub trust: TrustArgs,
}
