//! WebAssembly plugins: components implementing `plugin-sdk/contract/wit`,
//! run by wasmtime, one fresh instance per call.
//!
//! - One [`WasmRuntime`] (one `Engine`) per process, with the pooling
//!   instance allocator, so a fresh instance per call costs microseconds.
//! - Components import only what the linker defines (the `host` interface):
//!   no WASI, no clock, no files, no network. A component that imports
//!   anything else is refused at load, naming the import.
//! - Timeouts and cancellation are epoch interruption: a ticker thread
//!   advances the epoch every [`TICK`], and each store checks its call's
//!   [`CallControl`] on every tick, so a loop that never calls the host is
//!   still stopped. Memory is capped per store.
//! - Compiled components are cached by artifact digest and engine
//!   configuration, so a restart loads from disk in well under a
//!   millisecond instead of compiling again.
#![allow(unsafe_code)]

use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use cloacina_contract::{AbiVersion, Declaration, HOST_ABI_VERSION};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
    StoreLimits, StoreLimitsBuilder, Trap, UpdateDeadline,
};

use crate::{CallControl, LoadError, Plugin, TaskFailure};

mod bindings {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../../plugin-sdk/contract/wit",
    });
}

use bindings::cloacina::plugin::host;
use bindings::{ErrorKind, PluginPre};

/// How often the epoch advances: the granularity of timeouts.
pub const TICK: Duration = Duration::from_millis(10);

/// Settings of the process-wide WebAssembly runtime.
#[derive(Debug, Clone)]
pub struct WasmSettings {
    /// The most linear memory one call may use, in bytes.
    pub memory_limit: usize,
    /// The most instances alive at once (the pool's size).
    pub max_instances: u32,
    /// Where compiled components are kept between runs; none: no cache.
    pub cache_dir: Option<PathBuf>,
}

impl Default for WasmSettings {
    fn default() -> Self {
        WasmSettings {
            memory_limit: 64 << 20,
            max_instances: 64,
            cache_dir: None,
        }
    }
}

/// The per-process WebAssembly runtime: engine, linker, epoch ticker.
pub struct WasmRuntime {
    engine: Engine,
    linker: Linker<CallState>,
    settings: WasmSettings,
    ticker: Arc<EpochTicker>,
}

/// Advances the engine's epoch every [`TICK`] for as long as anything holds
/// it: the runtime and every plugin it loaded. Timeouts are epoch
/// deadlines, so a plugin that outlived its runtime's ticker would run a
/// spinning guest for ever; holding the ticker makes that impossible.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Result<EpochTicker, LoadError> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("cloacina-wasm-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(engine_error)?
        };
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for WasmRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmRuntime")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What one call's store holds.
struct CallState {
    control: CallControl,
    limits: StoreLimits,
    panic: Option<String>,
}

impl host::Host for CallState {
    fn log(&mut self, message: String) {
        self.control.log(&message);
    }

    fn is_cancelled(&mut self) -> bool {
        self.control.should_stop()
    }

    fn attempt(&mut self) -> u32 {
        self.control.attempt()
    }

    fn panicked(&mut self, message: String) {
        self.panic = Some(message);
    }
}

fn engine_error(error: impl std::fmt::Display) -> LoadError {
    LoadError::Engine(error.to_string())
}

impl WasmRuntime {
    pub fn new(settings: WasmSettings) -> Result<WasmRuntime, LoadError> {
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_component_instances(settings.max_instances)
            .total_core_instances(settings.max_instances)
            .total_memories(settings.max_instances)
            .total_tables(settings.max_instances)
            .max_memory_size(settings.memory_limit)
            // Keep the first pages of a returned slot mapped: the next
            // instance reuses them without page faults.
            .linear_memory_keep_resident(2 << 20)
            .table_keep_resident(64 << 10)
            // Where the kernel has PAGEMAP_SCAN (Linux 6.7+), reset only
            // the pages a call touched instead of all kept ones.
            .pagemap_scan(Enabled::Auto);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let engine = Engine::new(&config).map_err(engine_error)?;
        let mut linker = Linker::new(&engine);
        bindings::Plugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(engine_error)?;

        let ticker = Arc::new(EpochTicker::start(engine.clone())?);
        Ok(WasmRuntime {
            engine,
            linker,
            settings,
            ticker,
        })
    }

    /// Loads a component, from the compiled cache when `digest` (the
    /// artifact's SHA-256, hex) is given and a cache directory is set.
    pub fn load(&self, bytes: &[u8], digest: Option<&str>) -> Result<WasmPlugin, LoadError> {
        let component = self.component(bytes, digest)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|error| LoadError::ForbiddenImport(format!("{error:#}")))?;
        let pre = PluginPre::new(pre).map_err(|error| LoadError::NotAPlugin {
            path: format!("component: {error:#}"),
        })?;
        let mut plugin = WasmPlugin {
            engine: self.engine.clone(),
            pre,
            memory_limit: self.settings.memory_limit,
            declaration: Declaration::default(),
            abi: HOST_ABI_VERSION,
            _ticker: self.ticker.clone(),
        };
        let (abi_minor, json) = plugin
            .with_instance(
                &CallControl::with_timeout(Duration::from_secs(5)),
                |instance, store| {
                    Ok((
                        instance.call_abi_minor(&mut *store)?,
                        instance.call_declaration(&mut *store)?,
                    ))
                },
            )
            .map_err(|failure| LoadError::InvalidDeclaration {
                path: "component".into(),
                reason: failure.to_string(),
            })?;
        plugin.abi = AbiVersion {
            major: HOST_ABI_VERSION.major,
            minor: abi_minor,
        };
        plugin.declaration = crate::native::parse_declaration(&json).map_err(|reason| {
            LoadError::InvalidDeclaration {
                path: "component".into(),
                reason,
            }
        })?;
        Ok(plugin)
    }

    fn component(&self, bytes: &[u8], digest: Option<&str>) -> Result<Component, LoadError> {
        let cached = match (&self.settings.cache_dir, digest) {
            (Some(dir), Some(digest)) => Some(self.cache_path(dir, digest)),
            _ => None,
        };
        if let Some(path) = &cached
            && path.is_file()
        {
            // Read into memory rather than mapping the file: a mapped cache
            // file truncated under a running host would crash it (SIGBUS).
            let loaded = std::fs::read(path)
                .map_err(|error| error.to_string())
                .and_then(|bytes| {
                    // SAFETY: files in the cache are only ever written by
                    // `write_cache`, from `Component::serialize` of this wasmtime
                    // version, under a name that includes the engine's
                    // compatibility hash, through a temporary file and a rename;
                    // wasmtime also checks the header and refuses other
                    // versions' output. Any error is a miss.
                    unsafe { Component::deserialize(&self.engine, &bytes) }
                        .map_err(|error| error.to_string())
                });
            match loaded {
                Ok(component) => return Ok(component),
                Err(error) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable cached component: {error}")
                }
            }
        }
        let component = Component::new(&self.engine, bytes)
            .map_err(|error| LoadError::InvalidComponent(format!("{error:#}")))?;
        if let Some(path) = cached
            && let Err(error) = write_cache(&path, &component)
        {
            tracing::warn!(path = %path.display(), "cannot cache compiled component: {error}");
        }
        Ok(component)
    }

    fn cache_path(&self, dir: &Path, digest: &str) -> PathBuf {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        self.settings.memory_limit.hash(&mut hasher);
        dir.join(format!("{digest}-{:016x}.cwasm", hasher.finish()))
    }
}

fn write_cache(path: &Path, component: &Component) -> std::io::Result<()> {
    let bytes = component
        .serialize()
        .map_err(|error| std::io::Error::other(error.to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let temporary = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("component"),
        std::process::id()
    ));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

/// A loaded component.
pub struct WasmPlugin {
    engine: Engine,
    pre: PluginPre<CallState>,
    memory_limit: usize,
    declaration: Declaration,
    abi: AbiVersion,
    /// Keeps deadlines ticking while the plugin lives.
    _ticker: Arc<EpochTicker>,
}

impl std::fmt::Debug for WasmPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmPlugin")
            .field("abi", &self.abi)
            .field("tasks", &self.declaration.tasks.len())
            .finish_non_exhaustive()
    }
}

impl WasmPlugin {
    pub fn abi_version(&self) -> AbiVersion {
        self.abi
    }

    /// A health check: a fresh instance answering the cheapest export.
    /// Also the floor under every task call's cost.
    pub fn probe(&self) -> Result<u16, TaskFailure> {
        self.with_instance(&CallControl::new(), |instance, store| {
            instance.call_abi_minor(store)
        })
    }

    /// Runs `work` on a fresh instance in a fresh store, turning traps into
    /// task failures.
    fn with_instance<R>(
        &self,
        control: &CallControl,
        work: impl FnOnce(&bindings::Plugin, &mut Store<CallState>) -> wasmtime::Result<R>,
    ) -> Result<R, TaskFailure> {
        let mut store = Store::new(
            &self.engine,
            CallState {
                control: control.clone(),
                limits: StoreLimitsBuilder::new()
                    .memory_size(self.memory_limit)
                    .instances(16)
                    .build(),
                panic: None,
            },
        );
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|store| {
            if store.data().control.should_stop() {
                Err(Trap::Interrupt.into())
            } else {
                Ok(UpdateDeadline::Continue(1))
            }
        });
        let outcome = self
            .pre
            .instantiate(&mut store)
            .and_then(|instance| work(&instance, &mut store));
        outcome.map_err(|error| {
            if let Some(stopped) = control.stop_reason() {
                return stopped;
            }
            if let Some(message) = store.data_mut().panic.take() {
                return TaskFailure::Fatal(format!("the task panicked: {message}"));
            }
            TaskFailure::Fatal(format!("the plugin trapped: {error:#}"))
        })
    }
}

impl Plugin for WasmPlugin {
    fn declaration(&self) -> &Declaration {
        &self.declaration
    }

    fn call(
        &self,
        task: &str,
        context: &str,
        control: &CallControl,
    ) -> Result<String, TaskFailure> {
        let result = self.with_instance(control, |instance, store| {
            instance.call_call_task(store, task, context)
        })?;
        if let Some(stopped) = control.stop_reason() {
            return Err(stopped);
        }
        match result {
            Ok(output) => crate::checked_output(output),
            Err(error) => Err(match error.kind {
                ErrorKind::Retryable => TaskFailure::Retryable(error.message),
                ErrorKind::Fatal => TaskFailure::Fatal(error.message),
            }),
        }
    }
}
