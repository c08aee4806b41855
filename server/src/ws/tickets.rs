//! Single-use WebSocket tickets: a short-lived secret exchanged for a key,
//! so long-lived keys stay out of URLs. Bounded twice: each key may hold a
//! few unconsumed tickets (so one key cannot starve the others), and the
//! store as a whole is capped. Past either bound new tickets are refused
//! (429 with Retry-After) instead of evicting live ones.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::KeyRecord;

pub const TICKET_TTL: Duration = Duration::from_secs(60);
pub const TICKET_CAPACITY: usize = 1024;

#[derive(Debug)]
pub struct Tickets {
    live: Mutex<HashMap<String, (KeyRecord, Instant)>>,
    ttl: Duration,
    per_key: usize,
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

impl Tickets {
    /// A store whose tickets live `ttl`, at most `per_key` unconsumed ones
    /// for each key.
    pub fn new(ttl: Duration, per_key: usize) -> Self {
        Tickets {
            live: Mutex::new(HashMap::new()),
            ttl,
            per_key: per_key.max(1),
        }
    }

    /// A new ticket for `key`.
    pub fn issue(&self, key: KeyRecord) -> Result<String, Refused> {
        let mut live = self.lock();
        live.retain(|_, (_, at)| at.elapsed() < self.ttl);
        let retry_after = |issued: Option<Instant>| {
            issued
                .map(|at| self.ttl.saturating_sub(at.elapsed()))
                .unwrap_or(self.ttl)
                .max(Duration::from_secs(1))
        };
        let own: Vec<Instant> = live
            .values()
            .filter(|(holder, _)| holder.id == key.id)
            .map(|(_, at)| *at)
            .collect();
        if own.len() >= self.per_key {
            return Err(Refused {
                reason: RefusedBecause::KeyQuota,
                retry_after: retry_after(own.into_iter().min()),
            });
        }
        if live.len() >= TICKET_CAPACITY {
            let oldest = live.values().map(|(_, at)| *at).min();
            return Err(Refused {
                reason: RefusedBecause::StoreFull,
                retry_after: retry_after(oldest),
            });
        }
        let ticket = uuid::Uuid::new_v4().to_string();
        live.insert(ticket.clone(), (key, Instant::now()));
        Ok(ticket)
    }

    /// Consumes a ticket: the key it was issued for, once.
    pub fn redeem(&self, ticket: &str) -> Option<KeyRecord> {
        let (key, at) = self.lock().remove(ticket)?;
        (at.elapsed() < self.ttl).then_some(key)
    }

    /// Unexpired tickets held.
    pub fn len(&self) -> usize {
        let mut live = self.lock();
        live.retain(|_, (_, at)| at.elapsed() < self.ttl);
        live.len()
    }

    /// Drops the tickets of a revoked key.
    pub fn forget_key(&self, id: uuid::Uuid) {
        self.lock().retain(|_, (key, _)| key.id != id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (KeyRecord, Instant)>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{KeyRecord, Role};

    fn key() -> KeyRecord {
        KeyRecord {
            id: uuid::Uuid::new_v4(),
            name: "k".into(),
            role: Role::Read,
            tenant: None,
            is_admin: false,
            created_at_ms: 0,
            revoked: false,
        }
    }

    fn store() -> Tickets {
        Tickets::new(TICKET_TTL, 16)
    }

    #[test]
    fn a_ticket_works_once() {
        let tickets = store();
        let owner = key();
        let ticket = tickets.issue(owner.clone()).expect("issued");
        assert_eq!(tickets.redeem(&ticket), Some(owner));
        assert_eq!(tickets.redeem(&ticket), None);
        assert_eq!(tickets.redeem("made-up"), None);
    }

    #[test]
    fn one_key_cannot_take_more_than_its_quota() {
        let tickets = store();
        let greedy = key();
        for _ in 0..16 {
            tickets.issue(greedy.clone()).expect("within the quota");
        }
        let refused = tickets.issue(greedy.clone()).expect_err("over the quota");
        assert_eq!(refused.reason, RefusedBecause::KeyQuota);
        assert!(refused.retry_after >= Duration::from_secs(1));
        assert!(tickets.issue(key()).is_ok(), "another key is not starved");
    }

    #[test]
    fn a_full_store_refuses_instead_of_evicting() {
        let tickets = store();
        let first = tickets.issue(key()).expect("issued");
        for _ in 1..TICKET_CAPACITY {
            tickets.issue(key()).expect("issued");
        }
        let full = tickets.issue(key()).expect_err("full");
        assert_eq!(full.reason, RefusedBecause::StoreFull);
        assert!(full.retry_after >= Duration::from_secs(1));
        assert!(tickets.redeem(&first).is_some(), "nothing was evicted");
        assert!(tickets.issue(key()).is_ok(), "room again once one is used");
    }

    #[test]
    fn an_expired_ticket_is_refused() {
        let tickets = Tickets::new(Duration::from_millis(30), 16);
        let ticket = tickets.issue(key()).expect("issued");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(tickets.redeem(&ticket), None);
        assert_eq!(
            tickets.len(),
            0,
            "expired tickets do not count against the bound"
        );
    }

    #[test]
    fn a_revoked_keys_tickets_go() {
        let tickets = store();
        let owner = key();
        let ticket = tickets.issue(owner.clone()).expect("issued");
        tickets.forget_key(owner.id);
        assert_eq!(tickets.redeem(&ticket), None);
    }
}
