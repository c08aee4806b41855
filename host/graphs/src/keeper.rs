//! The lease keeper of one tenant's graph runtime, and its ears on
//! PostgreSQL.
//!
//! Every third of the lease TTL (or when woken: a lease released, a graph
//! registered, a reconnected listener) it
//! 1. renews every lease this host holds, and stops the reactor of each
//!    graph whose lease it no longer holds (taken over while this host
//!    stalled) or whose reactor was fenced;
//! 2. shows graphs run elsewhere with their owner and counters;
//! 3. claims graphs that are free. An expired lease (its owner died) is
//!    claimed at once by whoever sees it; a released or new graph is
//!    claimed by a host below its fair share (graphs / live hosts, rounded
//!    up), or by anyone once it stayed free for a renewal period, so
//!    graphs spread over hosts and none stays unowned;
//! 4. hands one graph over when it runs more than its fair share (a host
//!    joined), at most once a minute per graph, so a graph no other host
//!    takes does not bounce.
//!
//! Live hosts are those whose keeper wrote its `graph_hosts` heartbeat
//! within three renewal periods, less those that announced they stop.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use cloacina_database::{Dialect, Heard, clock};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::lease::{self, Ownership};
use crate::model::ReactorHealth;
use crate::notify::Note;
use crate::runtime::{GraphRuntime, Inner};
use crate::slot::ReactorInput;

/// A graph handed over to spread the load is not handed over again
/// before this.
const REBALANCE_COOLDOWN: Duration = Duration::from_secs(60);
/// How long a host that announced it is stopping is not counted.
const LEAVING_FOR: Duration = Duration::from_secs(60);
/// Command rows older than this are swept (their sender gave up).
const COMMANDS_KEPT_MS: i64 = 10 * 60 * 1000;

fn ttl_ms(inner: &Inner) -> i64 {
    i64::try_from(inner.config.lease_ttl.as_millis()).unwrap_or(i64::MAX)
}

/// The keeper of the runtime behind `inner`: it holds no strong reference
/// while it waits, so a runtime dropped without `shutdown` ends it.
pub(crate) fn spawn(inner: Weak<Inner>, wake: Arc<Notify>, lease_ttl: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval((lease_ttl / 3).max(Duration::from_millis(50)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = wake.notified() => {}
            }
            let Some(strong) = inner.upgrade() else {
                return;
            };
            let runtime = GraphRuntime::from_inner(strong);
            if runtime.inner().stopping.load(Ordering::SeqCst) {
                return;
            }
            keep(&runtime).await;
        }
    })
}

async fn keep(runtime: &GraphRuntime) {
    let inner = runtime.inner();
    let now = clock::now_ms();
    if let Err(error) = sqlx::query(
        "INSERT INTO graph_hosts (host, heartbeat_at) VALUES ($1, $2)
         ON CONFLICT (host) DO UPDATE SET heartbeat_at = $2",
    )
    .bind(&inner.host)
    .bind(now)
    .execute(inner.db.pool())
    .await
    {
        tracing::warn!(
            error = &error as &dyn std::error::Error,
            "cannot renew this host's graph heartbeat"
        );
    }
    // With the ownership lock, no claim or stop runs between the renewal
    // and what is read from it: a lease claimed just after the renewal is
    // not mistaken for a lost one, nor one claimed just before for a stray.
    // Without it (a claim or stop under way), only the renewal happens.
    let ownership = inner.ownership.try_lock().ok();
    match lease::renew(&inner.db, &inner.host, now + ttl_ms(inner)).await {
        Ok(_) if ownership.is_none() => {}
        Ok(held) => {
            let held: HashMap<String, i64> = held.into_iter().collect();
            let (lost, stray) = {
                let graphs = runtime.graphs();
                let lost: Vec<String> = graphs
                    .iter()
                    .filter(|(name, running)| {
                        running.owned.as_ref().is_some_and(|owned| {
                            held.get(name.as_str()) != Some(&owned.lease.epoch)
                                || owned
                                    .supervisor
                                    .as_ref()
                                    .is_some_and(JoinHandle::is_finished)
                        })
                    })
                    .map(|(name, _)| name.clone())
                    .collect();
                let stray: Vec<(String, i64)> = held
                    .iter()
                    .filter(|(name, _)| {
                        graphs
                            .get(name.as_str())
                            .is_none_or(|running| running.owned.is_none())
                    })
                    .map(|(name, epoch)| (name.clone(), *epoch))
                    .collect();
                (lost, stray)
            };
            for graph in lost {
                tracing::warn!(%graph, "this host no longer holds the graph's lease; its reactor stops here");
                // Stopped aside: a reactor in a slow node call must not
                // hold up the renewal of the other leases.
                let runtime = runtime.clone();
                tokio::spawn(async move {
                    let _ownership = runtime.inner().ownership.lock().await;
                    if runtime.stop_reactor(&graph).await.is_some()
                        && let Ok(slot) = runtime.slot(&graph)
                    {
                        slot.set_health(ReactorHealth::Remote { owner: None });
                        slot.release_all();
                    }
                });
            }
            // Held in the database but not run here (a stop that could not
            // release): given up, so another host runs them.
            for (graph, epoch) in stray {
                let held = lease::Lease {
                    owner: inner.host.clone(),
                    epoch,
                };
                if let Err(error) = lease::release(&inner.db, &graph, &held).await {
                    tracing::warn!(%graph, error = &error as &dyn std::error::Error, "cannot release a stray graph lease");
                }
            }
        }
        Err(error) => {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "cannot renew graph leases; reactors keep running, their commits are fenced if a lease was taken"
            );
        }
    }
    let candidates: Vec<String> = runtime
        .graphs()
        .iter()
        .filter(|(_, running)| running.owned.is_none())
        .map(|(name, _)| name.clone())
        .collect();
    // A claim, a handover or a stop under way: claims wait for the next
    // pass rather than hold up the renewals.
    if ownership.is_some() {
        claim(runtime, &candidates).await;
    }
    drop(ownership);
    rebalance(runtime, now).await;
    if let Err(error) = sqlx::query("DELETE FROM graph_commands WHERE created_at < $1")
        .bind(now - COMMANDS_KEPT_MS)
        .execute(inner.db.pool())
        .await
    {
        tracing::warn!(
            error = &error as &dyn std::error::Error,
            "cannot sweep old graph commands"
        );
    }
}

/// Claims each of `candidates` that is free under the placement rule, and
/// shows the others as run elsewhere. The caller holds the ownership lock.
pub(crate) async fn claim(runtime: &GraphRuntime, candidates: &[String]) {
    let inner = runtime.inner();
    if inner.stopping.load(Ordering::SeqCst) || candidates.is_empty() {
        return;
    }
    let now = clock::now_ms();
    let ownership = match lease::ownership(&inner.db, now).await {
        Ok(ownership) => ownership,
        Err(error) => {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "cannot read graph owners"
            );
            return;
        }
    };
    let by_graph: HashMap<&str, &Ownership> =
        ownership.iter().map(|o| (o.graph.as_str(), o)).collect();
    // SQLite is one host per file: whatever a previous process left is
    // this host's.
    let steal = inner.db.dialect() == Dialect::Sqlite;
    let Some(share) = fair_share(runtime, now).await else {
        return;
    };
    let mut owned = runtime.owned_here().len();
    let patience = inner.config.lease_ttl / 3;
    for graph in candidates {
        let Ok(slot) = runtime.slot(graph) else {
            continue;
        };
        if runtime
            .graphs()
            .get(graph)
            .is_none_or(|running| running.owned.is_some())
        {
            continue;
        }
        let Some(state) = by_graph.get(graph.as_str()) else {
            continue;
        };
        slot.set_counters(state.paused, state.fires, state.last_fired_at);
        if state.owner.is_some() && !steal {
            slot.set_health(ReactorHealth::Remote {
                owner: state.owner.clone(),
            });
            forget_free(inner, graph);
            continue;
        }
        let free_for = {
            let mut free = inner
                .free_since
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            free.entry(graph.clone())
                .or_insert_with(Instant::now)
                .elapsed()
        };
        let may_claim = steal || state.expired || owned < share || free_for >= patience;
        if !may_claim {
            // Free, and left for a host below its share for now.
            slot.set_health(ReactorHealth::Remote { owner: None });
            continue;
        }
        match lease::claim(&inner.db, graph, &inner.host, now, ttl_ms(inner), steal).await {
            Ok(Some(claimed)) => {
                forget_free(inner, graph);
                if let Some(previous) = &claimed.took_over_from {
                    inner.config.metrics.took_over();
                    tracing::info!(%graph, from = %previous, epoch = claimed.lease.epoch, "took a graph over from a host whose lease expired");
                } else {
                    tracing::info!(%graph, epoch = claimed.lease.epoch, "graph lease claimed");
                }
                runtime.run_reactor(graph, &slot, claimed.lease);
                owned += 1;
                // Commands sent while nobody ran it.
                tokio::spawn(crate::remote::serve(runtime.clone(), graph.clone()));
            }
            Ok(None) => slot.set_health(ReactorHealth::Remote { owner: None }),
            Err(error) => {
                tracing::warn!(%graph, error = &error as &dyn std::error::Error, "cannot claim a graph's lease")
            }
        }
    }
}

fn forget_free(inner: &Inner, graph: &str) {
    inner
        .free_since
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(graph);
}

/// Hands one graph over when this host runs more than its fair share.
async fn rebalance(runtime: &GraphRuntime, now: i64) {
    let inner = runtime.inner();
    if inner.db.dialect() == Dialect::Sqlite {
        return;
    }
    let Some(share) = fair_share(runtime, now).await else {
        return;
    };
    let owned = runtime.owned_here();
    if owned.len() <= share {
        return;
    }
    let movable = {
        let mut moved = inner
            .rebalanced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        moved.retain(|_, at| at.elapsed() < REBALANCE_COOLDOWN);
        let graph = owned
            .into_iter()
            .rev()
            .find(|graph| !moved.contains_key(graph));
        if let Some(graph) = &graph {
            moved.insert(graph.clone(), Instant::now());
        }
        graph
    };
    if let Some(graph) = movable {
        tracing::info!(%graph, share, "handing a graph over to spread graphs over the hosts");
        let runtime = runtime.clone();
        tokio::spawn(async move { runtime.hand_over(&graph).await });
    }
}

/// Graphs per live host, rounded up: live hosts are those whose keeper
/// heartbeat is recent, this one included, less those stopping.
async fn fair_share(runtime: &GraphRuntime, now: i64) -> Option<usize> {
    let inner = runtime.inner();
    // Two TTLs: six renewal periods without a heartbeat.
    let since = now - 2 * ttl_ms(inner);
    let hosts: Vec<String> =
        match sqlx::query_scalar("SELECT host FROM graph_hosts WHERE heartbeat_at > $1")
            .bind(since)
            .fetch_all(inner.db.pool())
            .await
        {
            Ok(hosts) => hosts,
            Err(error) => {
                // Unknown: better claim nothing new than take every graph.
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "cannot read the live graph hosts"
                );
                return None;
            }
        };
    let leaving: HashSet<String> = {
        let mut leaving = inner
            .leaving
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        leaving.retain(|_, at| at.elapsed() < LEAVING_FOR);
        leaving.keys().cloned().collect()
    };
    let mut live: HashSet<String> = hosts
        .into_iter()
        .filter(|host| !leaving.contains(host))
        .collect();
    live.insert(inner.host.clone());
    Some(runtime.names().len().div_ceil(live.len()))
}

/// Listens on the tenant's graph channel for the runtime behind `inner`.
pub(crate) fn listen(url: String, inner: Weak<Inner>) -> JoinHandle<()> {
    let (channel, me) = match inner.upgrade() {
        Some(strong) => (crate::notify::channel(&strong.db), strong.host.clone()),
        None => return tokio::spawn(async {}),
    };
    cloacina_database::listen(url, channel, move |heard| {
        let Some(strong) = inner.upgrade() else {
            return false;
        };
        let runtime = GraphRuntime::from_inner(strong);
        match heard {
            Heard::Unreachable => {}
            Heard::Connected => {
                // Notifications may have been missed: every reactor here
                // reads its inbox, commands are looked for, the keeper runs.
                for graph in runtime.owned_here() {
                    if let Ok(slot) = runtime.slot(&graph) {
                        let _ = slot.send(ReactorInput::InboxChanged);
                    }
                    tokio::spawn(crate::remote::serve(runtime.clone(), graph));
                }
                runtime.inner().remote.wake_all();
                runtime.inner().keeper.notify_one();
            }
            Heard::Payload(payload) => match Note::parse(&payload) {
                Some(Note::Events { sender, graph }) if sender != me => {
                    if runtime.owned_here().contains(&graph)
                        && let Ok(slot) = runtime.slot(&graph)
                    {
                        let _ = slot.send(ReactorInput::InboxChanged);
                    }
                }
                Some(Note::Released { sender, .. }) if sender != me => {
                    runtime.inner().keeper.notify_one();
                }
                Some(Note::Leaving { sender }) if sender != me => {
                    runtime
                        .inner()
                        .leaving
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(sender, Instant::now());
                }
                Some(Note::Command { graph }) if runtime.owned_here().contains(&graph) => {
                    tokio::spawn(crate::remote::serve(runtime.clone(), graph));
                }
                Some(Note::Reply { id }) => runtime.inner().remote.wake(&id),
                _ => {}
            },
        }
        true
    })
}
