//! File-system events on the drop directory wake the host's loop.

use std::path::Path;
use std::sync::Arc;

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::Notify;

use crate::HostError;

/// Watches `dir` (and its tenant folders) and notifies `wake` on any
/// change. Dropping the watcher stops it.
pub(crate) fn watch(dir: &Path, wake: Arc<Notify>) -> Result<RecommendedWatcher, HostError> {
    let failed = |error: notify::Error| HostError::Watch {
        dir: dir.display().to_string(),
        reason: error.to_string(),
    };
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            // The scan's own reads show up as access events: ignore them.
            Ok(event) if matches!(event.kind, notify::EventKind::Access(_)) => {}
            Ok(_) => wake.notify_one(),
            Err(error) => {
                // The periodic resync still finds what an event missed.
                tracing::warn!(%error, "drop directory watcher error");
                wake.notify_one();
            }
        }
    })
    .map_err(failed)?;
    watcher
        .watch(dir, RecursiveMode::Recursive)
        .map_err(failed)?;
    Ok(watcher)
}
