//! `cloaca._native`: the part of the `cloaca` Python package that is the
//! cloacina runtime. The Python layer (`cloaca/*.py`) owns the API users
//! see (decorators, builders, `Context`, results); this module runs what
//! it builds: a `runner::NativeRunner` per `DefaultRunner`, Python
//! functions as tasks (`plugin::PythonTasks`), tenant administration on
//! PostgreSQL (`admin`).

mod admin;
mod cron;
mod definition;
mod errors;
mod graphs;
mod plugin;
mod replies;
mod runner;
mod url;

use pyo3::prelude::*;

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    // The runtime's warnings (a trigger whose poll fails, a stored schedule
    // that no longer checks...) go to stderr; CLOACA_LOG=info|debug says
    // more. A subscriber the embedding program installed stays.
    let filter = tracing_subscriber::EnvFilter::try_from_env("CLOACA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    module.add_class::<runner::NativeRunner>()?;
    module.add_class::<plugin::Reply>()?;
    module.add_function(wrap_pyfunction!(plugin::interpreter_exiting, module)?)?;
    module.add_function(wrap_pyfunction!(plugin::failure_text, module)?)?;
    module.add_function(wrap_pyfunction!(plugin::is_transient_error, module)?)?;
    module.add_function(wrap_pyfunction!(url::backend_of, module)?)?;
    module.add_function(wrap_pyfunction!(admin::create_tenant, module)?)?;
    module.add_function(wrap_pyfunction!(admin::remove_tenant, module)?)?;
    module.add_function(wrap_pyfunction!(definition::check_name, module)?)?;
    module.add_function(wrap_pyfunction!(graphs::check_graph, module)?)?;
    module.add_function(wrap_pyfunction!(cron::check_cron, module)?)?;
    module.add(
        "MIN_POLL_INTERVAL_MS",
        cloacina_runtime::schedule::MIN_POLL_INTERVAL.as_millis() as u64,
    )?;
    module.add("TRANSIENT_WORDS", plugin::TRANSIENT_WORDS.to_vec())?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
