//! Keys and key ids.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::SignatureEnvelope;

/// Identifies a public key: the first 16 bytes of SHA-256 over its 32 bytes,
/// written as 32 lowercase hex digits. Short enough to read aloud, long
/// enough that two keys never share one by accident; the trust store still
/// compares whole keys.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId([u8; 16]);

impl KeyId {
    pub fn of(public_key: &PublicKey) -> KeyId {
        let digest = Sha256::digest(public_key.0.as_bytes());
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        KeyId(id)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// The text is not a key id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a key id (32 lowercase hex digits)")]
pub struct InvalidKeyId(String);

impl FromStr for KeyId {
    type Err = InvalidKeyId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidKeyId(text.to_owned());
        if text.len() != 32 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(invalid());
        }
        let mut id = [0u8; 16];
        for (slot, pair) in id.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| invalid())?;
            *slot = u8::from_str_radix(pair, 16).map_err(|_| invalid())?;
        }
        Ok(KeyId(id))
    }
}

impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// An ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(pub(crate) VerifyingKey);

impl PublicKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<PublicKey> {
        VerifyingKey::from_bytes(bytes).ok().map(PublicKey)
    }

    pub fn id(&self) -> KeyId {
        KeyId::of(self)
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0.as_bytes())
    }

    pub fn from_base64(text: &str) -> Option<PublicKey> {
        let bytes: [u8; 32] = BASE64.decode(text).ok()?.try_into().ok()?;
        PublicKey::from_bytes(&bytes)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id())
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        PublicKey::from_base64(&text)
            .ok_or_else(|| serde::de::Error::custom("not an ed25519 public key (32 bytes, base64)"))
    }
}

/// A private signing key with its public half. The secret is zeroed on drop.
pub struct KeyPair {
    name: String,
    secret: SigningKey,
}

impl KeyPair {
    /// A fresh key from the operating system's random source.
    pub fn generate(name: impl Into<String>) -> std::io::Result<KeyPair> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|error| std::io::Error::other(error.to_string()))?;
        let pair = KeyPair::from_seed(name, &seed);
        seed.fill(0);
        Ok(pair)
    }

    pub fn from_seed(name: impl Into<String>, seed: &[u8; 32]) -> KeyPair {
        KeyPair {
            name: name.into(),
            secret: SigningKey::from_bytes(seed),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.secret.verifying_key())
    }

    pub fn id(&self) -> KeyId {
        self.public_key().id()
    }

    pub(crate) fn seed(&self) -> &[u8; 32] {
        self.secret.as_bytes()
    }

    /// Signs `message`, naming this key in the envelope.
    pub fn sign(&self, message: &[u8]) -> SignatureEnvelope {
        SignatureEnvelope::new(self.id(), self.secret.sign(message))
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("name", &self.name)
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_stable_and_parse_back() {
        let pair = KeyPair::from_seed("a", &[1; 32]);
        let id = pair.id();
        assert_eq!(id, KeyPair::from_seed("b", &[1; 32]).id());
        assert_ne!(id, KeyPair::from_seed("a", &[2; 32]).id());
        assert_eq!(id.to_string().parse::<KeyId>(), Ok(id));
        assert!("ABCDEF".parse::<KeyId>().is_err());
    }

    #[test]
    fn generated_keys_differ() {
        let first = KeyPair::generate("one").expect("random source");
        let second = KeyPair::generate("two").expect("random source");
        assert_ne!(first.id(), second.id());
    }
}
