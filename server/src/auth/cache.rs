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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn key(name: &str) -> KeyRecord {
        KeyRecord {
            id: uuid::Uuid::new_v4(),
            name: name.into(),
            role: Role::Read,
            tenant: None,
            is_admin: false,
            created_at_ms: 0,
            revoked: false,
        }
    }

    #[test]
    fn revoking_evicts_that_key_alone() {
        let cache = KeyCache::default();
        let (a, b) = (key("a"), key("b"));
        cache.insert("ha".into(), a.clone());
        cache.insert("hb".into(), b.clone());
        cache.evict(a.id);
        assert_eq!(cache.get("ha"), None);
        assert_eq!(cache.get("hb"), Some(b));
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = KeyCache::default();
        for i in 0..CACHE_CAPACITY + 10 {
            cache.insert(format!("h{i}"), key("k"));
        }
        assert!(cache.lock().len() <= CACHE_CAPACITY);
        assert!(cache.get(&format!("h{}", CACHE_CAPACITY + 9)).is_some());
    }
}
