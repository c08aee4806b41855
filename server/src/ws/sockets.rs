//! Who holds which WebSockets: at most a few per key, and each one a
//! connection slot (an upgraded socket leaves hyper's connection, so it
//! takes a slot of its own), both taken before the upgrade and given back
//! when the socket ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedSemaphorePermit;

use crate::listener::Slots;

#[derive(Debug, Clone)]
pub struct Sockets {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    per_key: usize,
    open: Mutex<HashMap<uuid::Uuid, usize>>,
    slots: Slots,
}

/// Why a socket was refused before its upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketRefused {
    /// The key holds its quota of sockets.
    KeyQuota(usize),
    /// Every connection slot is taken.
    ServerFull,
}

/// One open socket; dropping it gives the key's place and the slot back.
#[derive(Debug)]
pub struct OpenSocket {
    inner: Arc<Inner>,
    key: uuid::Uuid,
    _slot: OwnedSemaphorePermit,
}

impl Sockets {
    pub fn new(per_key: usize, slots: Slots) -> Self {
        Sockets {
            inner: Arc::new(Inner {
                per_key: per_key.max(1),
                open: Mutex::new(HashMap::new()),
                slots,
            }),
        }
    }

    /// A place for one more socket of `key`.
    pub fn open(&self, key: uuid::Uuid) -> Result<OpenSocket, SocketRefused> {
        let mut open = self.inner.lock();
        let held = open.get(&key).copied().unwrap_or(0);
        if held >= self.inner.per_key {
            return Err(SocketRefused::KeyQuota(self.inner.per_key));
        }
        let slot = self
            .inner
            .slots
            .try_take()
            .ok_or(SocketRefused::ServerFull)?;
        open.insert(key, held + 1);
        Ok(OpenSocket {
            inner: self.inner.clone(),
            key,
            _slot: slot,
        })
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<uuid::Uuid, usize>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        let mut open = self.inner.lock();
        if let Some(held) = open.get_mut(&self.key) {
            *held -= 1;
            if *held == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_its_quota_and_gets_places_back() {
        let sockets = Sockets::new(2, Slots::new(10));
        let key = uuid::Uuid::new_v4();
        let first = sockets.open(key).expect("first");
        let _second = sockets.open(key).expect("second");
        assert_eq!(sockets.open(key).err(), Some(SocketRefused::KeyQuota(2)));
        assert!(
            sockets.open(uuid::Uuid::new_v4()).is_ok(),
            "others are not refused"
        );
        drop(first);
        assert!(
            sockets.open(key).is_ok(),
            "a closed socket gives its place back"
        );
    }

    #[test]
    fn sockets_take_connection_slots() {
        let slots = Slots::new(1);
        let sockets = Sockets::new(8, slots.clone());
        let held = sockets.open(uuid::Uuid::new_v4()).expect("one slot");
        assert_eq!(slots.in_use(), 1);
        assert_eq!(
            sockets.open(uuid::Uuid::new_v4()).err(),
            Some(SocketRefused::ServerFull)
        );
        drop(held);
        assert_eq!(slots.in_use(), 0);
    }
}
