//! The trust store: which public keys may sign packages, for which tenants,
//! and which keys are revoked.
//!
//! Revocation wins over trust: a revoked key id stays revoked even if its key
//! is added again, so a leaked key cannot be re-trusted by accident.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{KeyId, PublicKey, SignatureEnvelope};

/// Where a key is trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TrustScope {
    /// Every tenant.
    Global,
    /// Only these tenants.
    Tenants(BTreeSet<String>),
}

impl TrustScope {
    fn covers(&self, tenant: Option<&str>) -> bool {
        match (self, tenant) {
            (TrustScope::Global, _) => true,
            (TrustScope::Tenants(tenants), Some(tenant)) => tenants.contains(tenant),
            (TrustScope::Tenants(_), None) => false,
        }
    }

    fn widen(&mut self, other: TrustScope) {
        match (&mut *self, other) {
            (TrustScope::Tenants(mine), TrustScope::Tenants(theirs)) => mine.extend(theirs),
            (_, TrustScope::Global) => *self = TrustScope::Global,
            (TrustScope::Global, TrustScope::Tenants(_)) => {}
        }
    }
}

/// A trusted key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedKey {
    pub name: String,
    pub public_key: PublicKey,
    pub scope: TrustScope,
}

/// The signer of a verified signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSigner {
    pub key_id: KeyId,
    pub name: String,
}

/// Why a signature does not count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    #[error("signing key {0} has been revoked")]
    Revoked(KeyId),
    #[error("signing key {0} is not in the trust store")]
    Untrusted(KeyId),
    #[error("signing key {key_id} is trusted, but not for tenant `{tenant}`")]
    NotTrustedForTenant { key_id: KeyId, tenant: String },
    #[error("signing key {0} is trusted, but only for named tenants and none was given")]
    TenantRequired(KeyId),
    #[error("signature by key {0} does not match the signed bytes")]
    BadSignature(KeyId),
}

/// Trusted keys and revoked ids. Serialises to a small JSON document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustStore {
    #[serde(default)]
    keys: BTreeMap<KeyId, TrustedKey>,
    #[serde(default)]
    revoked: BTreeSet<KeyId>,
}

impl TrustStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts `public_key` within `scope` (widening an existing scope).
    /// A revoked key cannot be trusted again.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        public_key: PublicKey,
        scope: TrustScope,
    ) -> Result<KeyId, TrustError> {
        let key_id = public_key.id();
        if self.revoked.contains(&key_id) {
            return Err(TrustError::Revoked(key_id));
        }
        match self.keys.get_mut(&key_id) {
            Some(existing) => existing.scope.widen(scope),
            None => {
                self.keys.insert(
                    key_id,
                    TrustedKey {
                        name: name.into(),
                        public_key,
                        scope,
                    },
                );
            }
        }
        Ok(key_id)
    }

    /// Revokes a key id, whether or not it was trusted. Returns the key it
    /// removed from the trusted set, if any.
    pub fn revoke(&mut self, key_id: KeyId) -> Option<TrustedKey> {
        self.revoked.insert(key_id);
        self.keys.remove(&key_id)
    }

    pub fn is_revoked(&self, key_id: KeyId) -> bool {
        self.revoked.contains(&key_id)
    }

    pub fn keys(&self) -> impl Iterator<Item = (&KeyId, &TrustedKey)> {
        self.keys.iter()
    }

    pub fn revoked(&self) -> impl Iterator<Item = &KeyId> {
        self.revoked.iter()
    }

    /// Checks that `envelope` is a valid signature over `message` by a key
    /// trusted for `tenant` (`None`: the package is not tenant-scoped).
    pub fn verify(
        &self,
        envelope: &SignatureEnvelope,
        message: &[u8],
        tenant: Option<&str>,
    ) -> Result<VerifiedSigner, TrustError> {
        let key_id = envelope.key_id();
        if self.revoked.contains(&key_id) {
            return Err(TrustError::Revoked(key_id));
        }
        let trusted = self
            .keys
            .get(&key_id)
            .ok_or(TrustError::Untrusted(key_id))?;
        if !trusted.scope.covers(tenant) {
            return Err(match tenant {
                Some(tenant) => TrustError::NotTrustedForTenant {
                    key_id,
                    tenant: tenant.to_owned(),
                },
                None => TrustError::TenantRequired(key_id),
            });
        }
        // verify_strict also refuses malleable and small-order signatures.
        trusted
            .public_key
            .0
            .verify_strict(message, envelope.signature())
            .map_err(|_| TrustError::BadSignature(key_id))?;
        Ok(VerifiedSigner {
            key_id,
            name: trusted.name.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyPair;

    fn store_with(pair: &KeyPair, scope: TrustScope) -> TrustStore {
        let mut store = TrustStore::new();
        store
            .add(pair.name(), pair.public_key(), scope)
            .expect("not revoked");
        store
    }

    #[test]
    fn a_trusted_signature_verifies_and_names_its_signer() {
        let pair = KeyPair::from_seed("release", &[9; 32]);
        let store = store_with(&pair, TrustScope::Global);
        let signer = store
            .verify(&pair.sign(b"bytes"), b"bytes", Some("acme"))
            .expect("valid");
        assert_eq!(signer.key_id, pair.id());
        assert_eq!(signer.name, "release");
    }

    #[test]
    fn each_failure_has_its_own_error() {
        let pair = KeyPair::from_seed("a", &[1; 32]);
        let stranger = KeyPair::from_seed("b", &[2; 32]);
        let mut store = store_with(&pair, TrustScope::Global);
        let envelope = pair.sign(b"bytes");

        assert_eq!(
            store.verify(&envelope, b"other bytes", None),
            Err(TrustError::BadSignature(pair.id()))
        );
        assert_eq!(
            store.verify(&stranger.sign(b"bytes"), b"bytes", None),
            Err(TrustError::Untrusted(stranger.id()))
        );
        store.revoke(pair.id());
        assert_eq!(
            store.verify(&envelope, b"bytes", None),
            Err(TrustError::Revoked(pair.id()))
        );
        assert_eq!(
            store.add("again", pair.public_key(), TrustScope::Global),
            Err(TrustError::Revoked(pair.id()))
        );
    }

    #[test]
    fn tenant_scoped_keys_only_count_for_their_tenants() {
        let pair = KeyPair::from_seed("a", &[1; 32]);
        let mut store = store_with(&pair, TrustScope::Tenants(["acme".to_owned()].into()));
        let envelope = pair.sign(b"m");
        assert!(store.verify(&envelope, b"m", Some("acme")).is_ok());
        assert!(matches!(
            store.verify(&envelope, b"m", Some("globex")),
            Err(TrustError::NotTrustedForTenant { .. })
        ));
        assert!(matches!(
            store.verify(&envelope, b"m", None),
            Err(TrustError::TenantRequired(_))
        ));
        store
            .add(
                "a",
                pair.public_key(),
                TrustScope::Tenants(["globex".to_owned()].into()),
            )
            .expect("widen");
        assert!(store.verify(&envelope, b"m", Some("globex")).is_ok());
    }

    #[test]
    fn round_trips_through_json() {
        let pair = KeyPair::from_seed("a", &[1; 32]);
        let mut store = store_with(&pair, TrustScope::Global);
        store.revoke(KeyPair::from_seed("b", &[2; 32]).id());
        let text = serde_json::to_string(&store).expect("serialise");
        let parsed: TrustStore = serde_json::from_str(&text).expect("parse");
        assert_eq!(parsed, store);
    }
}
