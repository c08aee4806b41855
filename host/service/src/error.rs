//! What can stop a host from starting or answering.

/// A host operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Runtime(#[from] cloacina_runtime::RuntimeError),
    #[error(transparent)]
    Database(#[from] cloacina_runtime::database::DatabaseError),
    #[error(transparent)]
    Graphs(#[from] cloacina_graphs::GraphError),
    #[error(transparent)]
    Registry(#[from] cloacina_registry::RegistryError),
    #[error("cannot start the WebAssembly runtime")]
    Wasm(#[source] cloacina_loader::LoadError),
    #[error("cannot watch the drop directory {dir}: {reason}")]
    Watch { dir: String, reason: String },
    #[error("the host is shutting down")]
    ShuttingDown,
    #[error("the public tenant cannot be removed")]
    PublicTenant,
}
