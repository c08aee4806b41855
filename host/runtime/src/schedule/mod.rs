//! Executions nobody asked for by hand: cron schedules and poll triggers.
//! Each runs as a small task per schedule or trigger; what makes a firing
//! happen once across hosts is its guard, checked in the same transaction
//! as the start (see the `engine` module).

mod cron;
mod trigger;

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use cron::CronSchedule;
pub use trigger::{MIN_POLL_INTERVAL, Trigger};

use crate::RuntimeError;
use crate::database::Database;
use crate::engine::Command;
use crate::workflow::WorkflowRegistry;

#[derive(Debug)]
pub(crate) struct Scheduler {
    db: Database,
    registry: Arc<WorkflowRegistry>,
    commands: mpsc::UnboundedSender<Command>,
    running: Mutex<Vec<(String, JoinHandle<()>)>>,
}

impl Scheduler {
    pub(crate) fn new(
        db: Database,
        registry: Arc<WorkflowRegistry>,
        commands: mpsc::UnboundedSender<Command>,
    ) -> Self {
        Scheduler {
            db,
            registry,
            commands,
            running: Mutex::new(Vec::new()),
        }
    }

    pub(crate) async fn add_cron(&self, schedule: CronSchedule) -> Result<(), RuntimeError> {
        schedule.register(&self.db).await?;
        let key = format!("cron:{}", schedule.name);
        let handle = tokio::spawn(cron::run(
            schedule,
            self.db.clone(),
            self.registry.clone(),
            self.commands.clone(),
        ));
        self.replace(key, handle);
        Ok(())
    }

    pub(crate) fn add_trigger(&self, trigger: Trigger) {
        let key = format!("trigger:{}", trigger.name);
        let handle = tokio::spawn(trigger::run(
            trigger,
            self.db.clone(),
            self.registry.clone(),
            self.commands.clone(),
        ));
        self.replace(key, handle);
    }

    fn replace(&self, key: String, handle: JoinHandle<()>) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = running.iter().position(|(k, _)| *k == key) {
            let (_, old) = running.remove(at);
            old.abort();
        }
        running.push((key, handle));
    }

    /// Stops the named cron schedules and triggers.
    pub(crate) fn remove(&self, keys: &[String]) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.retain(|(key, handle)| {
            let keep = !keys.contains(key);
            if !keep {
                handle.abort();
            }
            keep
        });
    }

    pub(crate) fn stop(&self) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        for (_, handle) in running.drain(..) {
            handle.abort();
        }
    }
}
