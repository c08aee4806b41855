//! TLS for the API (`--tls-cert`, `--tls-key`). The certificate chain and
//! its private key are read from PEM files at start, and again whenever
//! [`ServerTls::reload`] is called (`server start` calls it on SIGHUP), so
//! a renewed certificate is taken up without a restart. A reload that
//! fails (a half-written file, a key that does not fit the certificate)
//! changes nothing: the certificate in use stays. Connections already open
//! keep the certificate they were accepted with; each new one takes the
//! current configuration (`listener::serve`).
//!
//! HTTP/1.1 only (ALPN `http/1.1`): the server does not speak HTTP/2.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::ServerConfig;
use rustls::pki_types::pem::{self, PemObject as _};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Where the certificate chain and its private key are (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate first, then any intermediates.
    pub cert: PathBuf,
    /// Its private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub key: PathBuf,
}

/// Why the certificate or key cannot be used. Each names its file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not readable PEM", path.display())]
    Pem {
        path: PathBuf,
        #[source]
        source: pem::Error,
    },
    #[error("{} holds no certificate (a PEM `CERTIFICATE` block)", path.display())]
    NoCertificate { path: PathBuf },
    #[error(
        "{} holds no private key (a PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block)",
        path.display()
    )]
    NoKey { path: PathBuf },
    /// rustls refused the pair: the key does not match the certificate,
    /// or either is of a kind it cannot use.
    #[error("the key in {} cannot serve the certificate in {}", key.display(), cert.display())]
    Unusable {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
}

/// The TLS configuration new connections are accepted with, replaced
/// whole by a successful reload. Cheap to clone (shared).
#[derive(Clone)]
pub struct ServerTls {
    files: TlsFiles,
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

/// The files only: the configuration holds the private key.
impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Reads both files. Blocking (two small files): call it before the
    /// runtime starts or off the async workers.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let config = read(&files)?;
        Ok(ServerTls {
            files,
            current: Arc::new(RwLock::new(config)),
        })
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reads both files again: on success new connections are accepted
    /// with them; on failure the configuration in use stays. Blocking, as
    /// [`ServerTls::load`].
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = read(&self.files)?;
        // A panic cannot leave the value half-written (it is one store).
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = config;
        Ok(())
    }

    /// The configuration for a connection accepted now.
    pub(crate) fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Both files as a server configuration (TLS 1.2 and 1.3, ALPN
/// `http/1.1`, no client certificates).
fn read(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certificates(&files.cert)?;
    let key = private_key(&files.key)?;
    let unusable = |source: rustls::Error| TlsError::Unusable {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    };
    // The provider named, not taken from the process default, so that a
    // second provider compiled in by some dependency cannot make this fail.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(unusable)?
        .with_no_client_auth()
        // Also checks that the key is the certificate's.
        .with_single_cert(chain, key)
        .map_err(unusable)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let text = read_file(path)?;
    let chain = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: path.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let text = read_file(path)?;
    PrivateKeyDer::from_pem_slice(&text).map_err(|error| match error {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_owned(),
        },
        source => TlsError::Pem {
            path: path.to_owned(),
            source,
        },
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> TlsFiles {
        TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }

    #[test]
    fn each_unusable_file_is_named() {
        let dir = tempfile::tempdir().expect("dir");
        let files = files(dir.path());
        let missing = ServerTls::load(files.clone()).expect_err("no files");
        assert!(
            matches!(&missing, TlsError::Read { path, .. } if *path == files.cert),
            "{missing}"
        );

        std::fs::write(&files.cert, "not PEM at all\n").expect("write");
        std::fs::write(&files.key, "not PEM at all\n").expect("write");
        let empty = ServerTls::load(files.clone()).expect_err("no certificate");
        assert!(
            matches!(&empty, TlsError::NoCertificate { path } if *path == files.cert),
            "{empty}"
        );
        assert!(empty.to_string().contains("cert.pem"), "{empty}");
    }
}
