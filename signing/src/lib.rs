//! Signing for cloacina packages: ed25519 keys, key ids, the signature
//! envelope, and the trust store that decides whose signatures count.
//!
//! This crate knows nothing of archives. It signs and verifies byte strings;
//! the package library decides which bytes (the canonical manifest, which
//! carries the hash of every other file).
//!
//! - [`KeyPair`] / [`PublicKey`]: keys, and the key files people keep
//!   (format in `signing/README.md`).
//! - [`KeyId`]: the first 16 bytes of SHA-256 over the public key, in hex.
//! - [`SignatureEnvelope`]: what `signature.json` holds.
//! - [`TrustStore`]: trusted public keys, global or per tenant, and revoked ids.

mod envelope;
mod key;
mod key_file;
mod trust;

pub use envelope::{EnvelopeError, SIGNATURE_ALGORITHM, SignatureEnvelope};
pub use key::{KeyId, KeyPair, PublicKey};
pub use key_file::{KeyFile, KeyFileError};
pub use trust::{TrustError, TrustScope, TrustStore, TrustedKey, VerifiedSigner};
