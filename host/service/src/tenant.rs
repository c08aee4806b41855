//! One tenant on this host: its runner, its graphs, its registry, its
//! reconciler.

use cloacina_graphs::GraphRuntime;
use cloacina_reconciler::{ReconcileReport, Reconciler};
use cloacina_registry::{Registry, RegistryError};
use cloacina_runtime::{Runner, TenantId};
use tokio::sync::Mutex;

/// A tenant this host serves.
#[derive(Debug)]
pub struct TenantHost {
    runner: Runner,
    graphs: GraphRuntime,
    registry: Registry,
    reconciler: Mutex<Reconciler>,
}

impl TenantHost {
    pub(crate) fn new(
        runner: Runner,
        graphs: GraphRuntime,
        registry: Registry,
        reconciler: Reconciler,
    ) -> Self {
        TenantHost {
            runner,
            graphs,
            registry,
            reconciler: Mutex::new(reconciler),
        }
    }

    pub fn tenant(&self) -> &TenantId {
        self.runner.tenant()
    }

    /// Runs this tenant's workflows.
    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    /// Runs this tenant's computation graphs.
    pub fn graphs(&self) -> &GraphRuntime {
        &self.graphs
    }

    /// Stops the graphs (each saves its state), then the runner (running
    /// tasks get the grace period).
    pub async fn shutdown(&self) {
        self.graphs.shutdown().await;
        self.runner.shutdown().await;
    }

    /// This tenant's packages.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// What this host has loaded for the tenant, as `name@version`.
    pub async fn loaded(&self) -> Vec<String> {
        self.reconciler.lock().await.loaded()
    }

    pub(crate) async fn reconcile(&self) -> Result<ReconcileReport, RegistryError> {
        self.reconciler.lock().await.reconcile().await
    }
}
