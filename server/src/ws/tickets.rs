//! Single-use WebSocket tickets: a short-lived secret exchanged for a key,
//! so long-lived keys stay out of URLs.
//!
//! Tickets live in the main database (their SHA-256, never the secret), so
//! a ticket minted on one host opens a socket on any host of the service,
//! and redeeming is one `DELETE ... RETURNING`: atomic, so a ticket works
//! once however many hosts race for it. Bounded twice: each key may hold a
//! few unconsumed tickets (so one key cannot starve the others), and the
//! store as a whole is capped. Past either bound new tickets are refused
//! (429 with Retry-After) instead of evicting live ones. Expiry is checked
//! at redemption; expired rows are swept when tickets are issued.

use std::time::Duration;

use cloacina_runtime::Database;
use cloacina_runtime::clock::now_ms;
use cloacina_runtime::database::{Dialect, Migration};

use crate::auth::KeyRecord;
use crate::auth::keys::{KeyStore, KeyStoreError, hash_key};

pub const TICKET_TTL: Duration = Duration::from_secs(60);
pub const TICKET_CAPACITY: usize = 1024;

const MIGRATIONS: &[Migration] = &[(
    1,
    &[
        "CREATE TABLE ws_tickets (
            ticket_hash TEXT PRIMARY KEY,
            key_id TEXT NOT NULL,
            issued_at BIGINT NOT NULL
        )",
        "CREATE INDEX ws_tickets_by_key ON ws_tickets (key_id)",
    ],
)];

/// The ticket table of a host's main database, shared by every host.
#[derive(Debug, Clone)]
pub struct Tickets {
    db: Database,
    keys: KeyStore,
    ttl: Duration,
    per_key: usize,
    capacity: usize,
}

/// Why no ticket was issued; either way, retry after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub reason: RefusedBecause,
    pub retry_after: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedBecause {
    /// This key holds its quota of unconsumed tickets.
    KeyQuota,
    /// The store holds its capacity of unconsumed tickets.
    StoreFull,
}

#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    #[error("no ticket: {:?}", .0.reason)]
    Refused(Refused),
    #[error("database error while {doing}")]
    Database {
        doing: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(transparent)]
    Keys(#[from] KeyStoreError),
}

fn db(doing: &'static str) -> impl Fn(sqlx::Error) -> TicketError + Copy {
    move |source| TicketError::Database { doing, source }
}

impl Tickets {
    /// The store in `db` (created if needed): tickets live `ttl`, at most
    /// `per_key` unconsumed ones for each key.
    pub async fn open(
        db: &Database,
        keys: KeyStore,
        ttl: Duration,
        per_key: usize,
    ) -> Result<Self, TicketError> {
        db.migrate("tickets", MIGRATIONS)
            .await
            .map_err(|error| TicketError::Keys(KeyStoreError::from(error)))?;
        Ok(Tickets {
            db: db.clone(),
            keys,
            ttl,
            per_key: per_key.max(1),
            capacity: TICKET_CAPACITY,
        })
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }

    /// A new ticket for `key`.
    pub async fn issue(&self, key: &KeyRecord) -> Result<String, TicketError> {
        let failed = db("issuing a WebSocket ticket");
        let now = now_ms();
        let cutoff = now - self.ttl_ms();
        let key_id = key.id.to_string();
        let mut tx = self.db.pool().begin().await.map_err(failed)?;
        // The sweep is the transaction's first write: on SQLite it takes
        // the lock, so the counts below cannot change under it.
        sqlx::query("DELETE FROM ws_tickets WHERE issued_at <= $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        if self.db.dialect() == Dialect::Postgres {
            // Two hosts issuing for one key count one after the other.
            sqlx::query("SELECT id FROM api_keys WHERE id = $1 FOR UPDATE")
                .bind(&key_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(failed)?;
        }
        let retry_after = |issued: Option<i64>| {
            let left = issued.map_or(self.ttl_ms(), |at| at - cutoff).max(1_000);
            Duration::from_millis(u64::try_from(left).unwrap_or(1_000))
        };
        let (own, oldest_own): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), MIN(issued_at) FROM ws_tickets WHERE key_id = $1")
                .bind(&key_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(failed)?;
        if usize::try_from(own).unwrap_or(usize::MAX) >= self.per_key {
            return Err(TicketError::Refused(Refused {
                reason: RefusedBecause::KeyQuota,
                retry_after: retry_after(oldest_own),
            }));
        }
        let (all, oldest): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), MIN(issued_at) FROM ws_tickets")
                .fetch_one(&mut *tx)
                .await
                .map_err(failed)?;
        if usize::try_from(all).unwrap_or(usize::MAX) >= self.capacity {
            return Err(TicketError::Refused(Refused {
                reason: RefusedBecause::StoreFull,
                retry_after: retry_after(oldest),
            }));
        }
        let ticket = uuid::Uuid::new_v4().to_string();
        sqlx::query("INSERT INTO ws_tickets (ticket_hash, key_id, issued_at) VALUES ($1, $2, $3)")
            .bind(hash_key(&ticket))
            .bind(&key_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        Ok(ticket)
    }

    /// Consumes a ticket: the key it was issued for, once, if that key is
    /// still valid. None for an unknown, used or expired ticket.
    pub async fn redeem(&self, ticket: &str) -> Result<Option<KeyRecord>, TicketError> {
        let cutoff = now_ms() - self.ttl_ms();
        let key_id: Option<String> = sqlx::query_scalar(
            "DELETE FROM ws_tickets WHERE ticket_hash = $1 AND issued_at > $2 RETURNING key_id",
        )
        .bind(hash_key(ticket))
        .bind(cutoff)
        .fetch_optional(self.db.pool())
        .await
        .map_err(db("redeeming a WebSocket ticket"))?;
        let Some(id) = key_id.and_then(|id| id.parse().ok()) else {
            return Ok(None);
        };
        Ok(self.keys.get(id).await?.filter(|key| !key.revoked))
    }

    /// Unexpired tickets held, across hosts.
    pub async fn len(&self) -> Result<usize, TicketError> {
        let live: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ws_tickets WHERE issued_at > $1")
            .bind(now_ms() - self.ttl_ms())
            .fetch_one(self.db.pool())
            .await
            .map_err(db("counting WebSocket tickets"))?;
        Ok(usize::try_from(live).unwrap_or(0))
    }

    /// Drops the tickets of a revoked key (redemption checks revocation
    /// too, so a failure here only leaves dead rows to expire).
    pub async fn forget_key(&self, id: uuid::Uuid) {
        if let Err(error) = sqlx::query("DELETE FROM ws_tickets WHERE key_id = $1")
            .bind(id.to_string())
            .execute(self.db.pool())
            .await
        {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "cannot drop a revoked key's tickets"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{NewKey, Role};
    use cloacina_runtime::TenantId;

    struct Store {
        tickets: Tickets,
        keys: KeyStore,
        _dir: tempfile::TempDir,
    }

    async fn store_with(ttl: Duration) -> Store {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("main.db").display());
        let db = Database::connect(&url, &TenantId::public())
            .await
            .expect("database");
        let keys = KeyStore::open(&db).await.expect("keys");
        let tickets = Tickets::open(&db, keys.clone(), ttl, 16)
            .await
            .expect("tickets");
        Store {
            tickets,
            keys,
            _dir: dir,
        }
    }

    async fn key(store: &Store) -> KeyRecord {
        let plaintext = crate::auth::keys::generate_key().expect("random");
        store
            .keys
            .create(
                &plaintext,
                &NewKey {
                    name: "k".into(),
                    role: Role::Read,
                    tenant: None,
                    is_admin: false,
                },
            )
            .await
            .expect("key")
    }

    fn refusal(error: TicketError) -> Refused {
        match error {
            TicketError::Refused(refused) => refused,
            other => panic!("expected a refusal, got {other}"),
        }
    }

    #[tokio::test]
    async fn a_ticket_works_once() {
        let store = store_with(TICKET_TTL).await;
        let owner = key(&store).await;
        let ticket = store.tickets.issue(&owner).await.expect("issued");
        assert_eq!(
            store.tickets.redeem(&ticket).await.expect("read"),
            Some(owner)
        );
        assert_eq!(store.tickets.redeem(&ticket).await.expect("read"), None);
        assert_eq!(store.tickets.redeem("made-up").await.expect("read"), None);
    }

    #[tokio::test]
    async fn one_key_cannot_take_more_than_its_quota() {
        let store = store_with(TICKET_TTL).await;
        let greedy = key(&store).await;
        for _ in 0..16 {
            store
                .tickets
                .issue(&greedy)
                .await
                .expect("within the quota");
        }
        let refused = refusal(store.tickets.issue(&greedy).await.expect_err("over"));
        assert_eq!(refused.reason, RefusedBecause::KeyQuota);
        assert!(refused.retry_after >= Duration::from_secs(1));
        let other = key(&store).await;
        assert!(
            store.tickets.issue(&other).await.is_ok(),
            "another key is not starved"
        );
    }

    #[tokio::test]
    async fn a_full_store_refuses_instead_of_evicting() {
        let mut store = store_with(TICKET_TTL).await;
        store.tickets.capacity = 20;
        let first_key = key(&store).await;
        let first = store.tickets.issue(&first_key).await.expect("issued");
        for _ in 1..20 {
            let holder = key(&store).await;
            store.tickets.issue(&holder).await.expect("issued");
        }
        let late = key(&store).await;
        let full = refusal(store.tickets.issue(&late).await.expect_err("full"));
        assert_eq!(full.reason, RefusedBecause::StoreFull);
        assert!(full.retry_after >= Duration::from_secs(1));
        assert!(
            store.tickets.redeem(&first).await.expect("read").is_some(),
            "nothing was evicted"
        );
        assert!(
            store.tickets.issue(&late).await.is_ok(),
            "room again once one is used"
        );
    }

    #[tokio::test]
    async fn an_expired_ticket_is_refused() {
        let store = store_with(Duration::from_millis(30)).await;
        let owner = key(&store).await;
        let ticket = store.tickets.issue(&owner).await.expect("issued");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(store.tickets.redeem(&ticket).await.expect("read"), None);
        assert_eq!(
            store.tickets.len().await.expect("count"),
            0,
            "expired tickets do not count against the bound"
        );
    }

    #[tokio::test]
    async fn a_revoked_keys_tickets_go() {
        let store = store_with(TICKET_TTL).await;
        let owner = key(&store).await;
        let ticket = store.tickets.issue(&owner).await.expect("issued");
        let kept = store.tickets.issue(&owner).await.expect("issued");
        store.keys.revoke(owner.id).await.expect("revoked");
        store.tickets.forget_key(owner.id).await;
        assert_eq!(store.tickets.redeem(&ticket).await.expect("read"), None);
        // Even a ticket whose row survived (another host's revocation):
        // the key is checked at redemption.
        sqlx::query("INSERT INTO ws_tickets (ticket_hash, key_id, issued_at) VALUES ($1, $2, $3)")
            .bind(hash_key(&kept))
            .bind(owner.id.to_string())
            .bind(now_ms())
            .execute(store.tickets.db.pool())
            .await
            .expect("row");
        assert_eq!(store.tickets.redeem(&kept).await.expect("read"), None);
    }
}
