//! Who holds which WebSockets: at most a few per key, and each one a
//! connection slot (an upgraded socket leaves hyper's connection, so it
//! takes a slot of its own), both taken before the upgrade and given back
//! when the socket ends. Revoking a key closes its sockets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, watch};

use crate::listener::Slots;

#[derive(Debug, Clone)]
pub struct Sockets {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    per_key: usize,
    open: Mutex<HashMap<uuid::Uuid, Held>>,
    slots: Slots,
}

/// One key's sockets: how many, and the signal that closes them.
#[derive(Debug)]
struct Held {
    count: usize,
    revoked: watch::Sender<bool>,
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
    revoked: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
}

impl OpenSocket {
    /// Resolves once the socket's key is revoked.
    pub async fn revoked(&mut self) {
        let _ = self.revoked.wait_for(|revoked| *revoked).await;
    }
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
        if open
            .get(&key)
            .is_some_and(|held| held.count >= self.inner.per_key)
        {
            return Err(SocketRefused::KeyQuota(self.inner.per_key));
        }
        let slot = self
            .inner
            .slots
            .try_take()
            .ok_or(SocketRefused::ServerFull)?;
        let held = open.entry(key).or_insert_with(|| Held {
            count: 0,
            revoked: watch::channel(false).0,
        });
        held.count += 1;
        Ok(OpenSocket {
            inner: self.inner.clone(),
            key,
            revoked: held.revoked.subscribe(),
            _slot: slot,
        })
    }

    /// Closes every open socket of a revoked key.
    pub fn revoke(&self, key: uuid::Uuid) {
        if let Some(held) = self.inner.lock().get(&key) {
            let _ = held.revoked.send(true);
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<uuid::Uuid, Held>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        let mut open = self.inner.lock();
        if let Some(held) = open.get_mut(&self.key) {
            held.count -= 1;
            if held.count == 0 {
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
