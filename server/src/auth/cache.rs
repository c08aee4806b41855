//! Validated keys, remembered briefly: a bounded map from key hash to key,
//! each entry good for a short TTL. Revoking a key evicts that key alone.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::keys::KeyRecord;

pub const CACHE_CAPACITY: usize = 256;
pub const CACHE_TTL: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, (KeyRecord, Instant)>>,
}

impl KeyCache {
    pub fn get(&self, hash: &str) -> Option<KeyRecord> {
        let mut entries = self.lock();
        match entries.get(hash) {
            Some((record, at)) if at.elapsed() < CACHE_TTL => Some(record.clone()),
            Some(_) => {
                entries.remove(hash);
                None
            }
            None => None,
        }
    }

    pub fn insert(&self, hash: String, record: KeyRecord) {
        let mut entries = self.lock();
        if entries.len() >= CACHE_CAPACITY && !entries.contains_key(&hash) {
            entries.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
            if entries.len() >= CACHE_CAPACITY
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(hash, _)| hash.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(hash, (record, Instant::now()));
    }

    /// Forgets the key with this id (revoked): it stops working at once.
    pub fn evict(&self, id: uuid::Uuid) {
        self.lock().retain(|_, (record, _)| record.id != id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (KeyRecord, Instant)>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
