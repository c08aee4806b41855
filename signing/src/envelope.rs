//! The signature envelope: what `signature.json` holds, and what a detached
//! signature registered through the API looks like.
//!
//! ```json
//! {"algorithm":"ed25519","key_id":"<32 hex>","signature":"<base64 of 64 bytes>"}
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

use crate::KeyId;

/// The only algorithm this version signs and verifies with.
pub const SIGNATURE_ALGORITHM: &str = "ed25519";

/// A signature and the id of the key that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureEnvelope {
    key_id: KeyId,
    signature: Signature,
}

/// The envelope's wire form; kept apart so that parsing can validate.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEnvelope {
    algorithm: String,
    key_id: KeyId,
    signature: String,
}

/// Bytes that are not a signature envelope.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("signature envelope is not valid JSON of the envelope schema")]
    Malformed(#[source] serde_json::Error),
    #[error("signature algorithm `{0}` is not supported (only {SIGNATURE_ALGORITHM})")]
    UnsupportedAlgorithm(String),
    #[error("signature is not 64 bytes of base64")]
    BadSignatureEncoding,
}

impl SignatureEnvelope {
    pub(crate) fn new(key_id: KeyId, signature: Signature) -> Self {
        SignatureEnvelope { key_id, signature }
    }

    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    pub(crate) fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The 64 signature bytes, for storage beside a detached registration.
    pub fn signature_bytes(&self) -> [u8; 64] {
        self.signature.to_bytes()
    }

    pub fn from_parts(key_id: KeyId, signature: &[u8; 64]) -> Self {
        SignatureEnvelope {
            key_id,
            signature: Signature::from_bytes(signature),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        let wire = WireEnvelope {
            algorithm: SIGNATURE_ALGORITHM.to_owned(),
            key_id: self.key_id,
            signature: BASE64.encode(self.signature.to_bytes()),
        };
        // Three strings: serialisation cannot fail.
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let wire: WireEnvelope = serde_json::from_slice(bytes).map_err(EnvelopeError::Malformed)?;
        if wire.algorithm != SIGNATURE_ALGORITHM {
            return Err(EnvelopeError::UnsupportedAlgorithm(wire.algorithm));
        }
        let bytes: [u8; 64] = BASE64
            .decode(wire.signature.as_bytes())
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(EnvelopeError::BadSignatureEncoding)?;
        Ok(SignatureEnvelope::from_parts(wire.key_id, &bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyPair;

    #[test]
    fn round_trips_through_json() {
        let envelope = KeyPair::from_seed("k", &[3; 32]).sign(b"hello");
        let parsed = SignatureEnvelope::from_json(&envelope.to_json()).expect("round trip");
        assert_eq!(parsed, envelope);
    }

    #[test]
    fn refuses_other_algorithms_and_bad_encodings() {
        let key_id = KeyPair::from_seed("k", &[3; 32]).id();
        let other = format!(r#"{{"algorithm":"rsa","key_id":"{key_id}","signature":"AA=="}}"#);
        assert!(matches!(
            SignatureEnvelope::from_json(other.as_bytes()),
            Err(EnvelopeError::UnsupportedAlgorithm(_))
        ));
        let short = format!(r#"{{"algorithm":"ed25519","key_id":"{key_id}","signature":"AA=="}}"#);
        assert!(matches!(
            SignatureEnvelope::from_json(short.as_bytes()),
            Err(EnvelopeError::BadSignatureEncoding)
        ));
    }
}
