//! Who runs a graph's reactor: a row lease in the tenant database
//! (`graph_state.owner`, `lease_until`, `epoch`), not an advisory lock.
//!
//! - A host claims a graph with a conditional `UPDATE`: only when nobody
//!   owns it or the owner's lease expired (on SQLite, one host per file,
//!   whatever a previous process left is taken). Each claim increments the
//!   epoch.
//! - The owner renews every lease it holds in one statement, every third
//!   of the TTL; a graph missing from the renewal was taken over.
//! - Every checkpoint and firing commit is conditioned on owner and epoch
//!   (`store::commit`): a host that lost its lease (a pause, a partition)
//!   cannot write, and its reactor stops at the first commit refused.
//! - A graceful stop releases the lease (`owner = NULL`) and announces it,
//!   so another host claims the graph at once.

use cloacina_database::Database;
use sqlx::Row;

use crate::GraphError;

/// A lease held on one graph: commits carry it as their fence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lease {
    pub owner: String,
    pub epoch: i64,
}

/// A successful claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claimed {
    pub lease: Lease,
    /// Another host held it and its lease had expired: a takeover.
    pub took_over_from: Option<String>,
}

/// Claims `graph` for `me` until `now + ttl_ms` if it is free (no owner,
/// or an expired lease), or whatever its state when `steal` (SQLite: one
/// host per file).
pub(crate) async fn claim(
    db: &Database,
    graph: &str,
    me: &str,
    now: i64,
    ttl_ms: i64,
    steal: bool,
) -> Result<Option<Claimed>, GraphError> {
    let failed = GraphError::db("claiming a graph's lease");
    let Some(row) =
        sqlx::query("SELECT owner, lease_until, epoch FROM graph_state WHERE graph = $1")
            .bind(graph)
            .fetch_optional(db.pool())
            .await
            .map_err(failed)?
    else {
        return Ok(None);
    };
    let owner: Option<String> = row.try_get(0).map_err(failed)?;
    let lease_until: Option<i64> = row.try_get(1).map_err(failed)?;
    let epoch: i64 = row.try_get(2).map_err(failed)?;
    let expired = lease_until.is_none_or(|until| until < now);
    let free = owner.is_none() || expired;
    if !free && !steal && owner.as_deref() != Some(me) {
        return Ok(None);
    }
    // The epoch read above is the condition: of two hosts claiming at once,
    // one wins.
    let claimed: Option<i64> = sqlx::query_scalar(
        "UPDATE graph_state SET owner = $1, lease_until = $2, epoch = epoch + 1
         WHERE graph = $3 AND epoch = $4 RETURNING epoch",
    )
    .bind(me)
    .bind(now + ttl_ms)
    .bind(graph)
    .bind(epoch)
    .fetch_optional(db.pool())
    .await
    .map_err(failed)?;
    Ok(claimed.map(|epoch| Claimed {
        lease: Lease {
            owner: me.to_owned(),
            epoch,
        },
        took_over_from: owner.filter(|previous| previous != me),
    }))
}

/// Renews every lease `me` holds; returns the graphs still held, with
/// their epochs.
pub(crate) async fn renew(
    db: &Database,
    me: &str,
    until: i64,
) -> Result<Vec<(String, i64)>, GraphError> {
    sqlx::query_as(
        "UPDATE graph_state SET lease_until = $1 WHERE owner = $2 RETURNING graph, epoch",
    )
    .bind(until)
    .bind(me)
    .fetch_all(db.pool())
    .await
    .map_err(GraphError::db("renewing graph leases"))
}

/// Gives `lease` on `graph` up, if it is still held.
pub(crate) async fn release(db: &Database, graph: &str, lease: &Lease) -> Result<bool, GraphError> {
    let done = sqlx::query(
        "UPDATE graph_state SET owner = NULL, lease_until = NULL
         WHERE graph = $1 AND owner = $2 AND epoch = $3",
    )
    .bind(graph)
    .bind(&lease.owner)
    .bind(lease.epoch)
    .execute(db.pool())
    .await
    .map_err(GraphError::db("releasing a graph's lease"))?;
    Ok(done.rows_affected() == 1)
}

/// A graph as every host sees it in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ownership {
    pub graph: String,
    /// The holder of an unexpired lease.
    pub owner: Option<String>,
    /// Whether the lease lapsed without a release (its owner died or
    /// stalled).
    pub expired: bool,
    pub paused: bool,
    pub fires: i64,
    pub last_fired_at: Option<i64>,
}

/// Every graph's owner and counters.
pub(crate) async fn ownership(db: &Database, now: i64) -> Result<Vec<Ownership>, GraphError> {
    let failed = GraphError::db("reading graph owners");
    let rows = sqlx::query(
        "SELECT graph, owner, lease_until, paused, fires, last_fired_at FROM graph_state ORDER BY graph",
    )
    .fetch_all(db.pool())
    .await
    .map_err(failed)?;
    rows.iter()
        .map(|row| {
            let owner: Option<String> = row.try_get(1).map_err(failed)?;
            let lease_until: Option<i64> = row.try_get(2).map_err(failed)?;
            let live = lease_until.is_some_and(|until| until >= now);
            Ok(Ownership {
                graph: row.try_get(0).map_err(failed)?,
                expired: owner.is_some() && !live,
                owner: owner.filter(|_| live),
                paused: row.try_get::<i64, _>(3).map_err(failed)? != 0,
                fires: row.try_get(4).map_err(failed)?,
                last_fired_at: row.try_get(5).map_err(failed)?,
            })
        })
        .collect()
}
