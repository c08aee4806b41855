//! Self-signed certificates for the TLS tests, made fresh by each test
//! (nothing to expire in the repository).

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;

/// A self-signed certificate for `localhost` and 127.0.0.1, and its key.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM (PKCS#8).
    pub key_pem: String,
    /// The certificate, DER: what a server presents.
    pub der: Vec<u8>,
}

impl SelfSigned {
    pub fn new() -> SelfSigned {
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("parameters");
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
        let key = rcgen::KeyPair::generate().expect("a key");
        let cert = params.self_signed(&key).expect("a certificate");
        SelfSigned {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// Writes the certificate to `cert` and the key to `key`.
    pub fn write(&self, cert: &Path, key: &Path) {
        std::fs::write(cert, &self.cert_pem)
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", cert.display()));
        std::fs::write(key, &self.key_pem)
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", key.display()));
    }
}

impl Default for SelfSigned {
    fn default() -> Self {
        SelfSigned::new()
    }
}

/// A TLS client configuration that trusts `trusted` alone.
pub fn trusting(trusted: &[u8]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(trusted.to_vec()))
        .expect("a trust anchor");
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}
