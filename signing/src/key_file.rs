//! Key files: small JSON documents people can read, diff and back up.
//!
//! `NAME.key` (mode 0600) holds the private seed; `NAME.pub` holds only the
//! public key. Both name the key id, which is checked against the key on
//! every read, so a hand-edited file cannot claim another key's id. The format
//! is described in `signing/README.md`.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::{KeyId, KeyPair, PublicKey};

const PRIVATE_TYPE: &str = "cloacina-ed25519-private-key";
const PUBLIC_TYPE: &str = "cloacina-ed25519-public-key";
const FORMAT_VERSION: u32 = 1;

/// The contents of a key file.
#[derive(Debug)]
pub enum KeyFile {
    Private(KeyPair),
    Public { name: String, key: PublicKey },
}

/// A key file that could not be written or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("key file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a cloacina key file: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error("{path}: the file says key id {claimed}, but its key's id is {actual}")]
    KeyIdMismatch {
        path: PathBuf,
        claimed: KeyId,
        actual: KeyId,
    },
    #[error(
        "{path}: private key is readable by others (mode {mode:04o}); run `chmod 600 {path}` and check who has seen it"
    )]
    InsecurePermissions { path: PathBuf, mode: u32 },
    #[error("{path}: holds a public key, but a private key is needed to sign")]
    NotPrivate { path: PathBuf },
    #[error("{path}: already exists; refusing to overwrite a key")]
    AlreadyExists { path: PathBuf },
    #[error("`{0}` is not a usable key name (letters, digits, _ - . ; not starting with . or -)")]
    InvalidName(String),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireKeyFile {
    #[serde(rename = "type")]
    kind: String,
    version: u32,
    name: String,
    key_id: KeyId,
    public_key: PublicKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_key: Option<String>,
}

impl KeyFile {
    /// Reads a private or public key file, refusing a private key whose file
    /// others may read.
    pub fn read(path: &Path) -> Result<KeyFile, KeyFileError> {
        let io = |source| KeyFileError::Io {
            path: path.to_owned(),
            source,
        };
        let malformed = |reason: String| KeyFileError::Malformed {
            path: path.to_owned(),
            reason,
        };
        let bytes = fs::read(path).map_err(io)?;
        let wire: WireKeyFile =
            serde_json::from_slice(&bytes).map_err(|error| malformed(error.to_string()))?;
        if wire.version != FORMAT_VERSION {
            return Err(malformed(format!(
                "format version {} (this build reads {FORMAT_VERSION})",
                wire.version
            )));
        }
        let key_file = match (wire.kind.as_str(), &wire.secret_key) {
            (PRIVATE_TYPE, Some(secret)) => {
                refuse_if_shared(path)?;
                let seed: [u8; 32] = BASE64
                    .decode(secret)
                    .ok()
                    .and_then(|bytes| bytes.try_into().ok())
                    .ok_or_else(|| malformed("secret_key is not 32 bytes of base64".into()))?;
                let pair = KeyPair::from_seed(wire.name, &seed);
                if pair.public_key() != wire.public_key {
                    return Err(malformed("public_key does not belong to secret_key".into()));
                }
                KeyFile::Private(pair)
            }
            (PUBLIC_TYPE, None) => KeyFile::Public {
                name: wire.name,
                key: wire.public_key,
            },
            (PRIVATE_TYPE, None) => return Err(malformed("secret_key is missing".into())),
            (PUBLIC_TYPE, Some(_)) => {
                return Err(malformed("a public key file holds a secret_key".into()));
            }
            (other, _) => return Err(malformed(format!("unknown type `{other}`"))),
        };
        let actual = key_file.public_key().id();
        if actual != wire.key_id {
            return Err(KeyFileError::KeyIdMismatch {
                path: path.to_owned(),
                claimed: wire.key_id,
                actual,
            });
        }
        Ok(key_file)
    }

    pub fn public_key(&self) -> PublicKey {
        match self {
            KeyFile::Private(pair) => pair.public_key(),
            KeyFile::Public { key, .. } => *key,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            KeyFile::Private(pair) => pair.name(),
            KeyFile::Public { name, .. } => name,
        }
    }

    pub fn is_private(&self) -> bool {
        matches!(self, KeyFile::Private(_))
    }

    /// The signing key, or an error naming the file when it is public only.
    pub fn into_key_pair(self, path: &Path) -> Result<KeyPair, KeyFileError> {
        match self {
            KeyFile::Private(pair) => Ok(pair),
            KeyFile::Public { .. } => Err(KeyFileError::NotPrivate {
                path: path.to_owned(),
            }),
        }
    }
}

impl KeyPair {
    /// Writes `NAME.key` (mode 0600) and `NAME.pub` into `dir`, refusing to
    /// overwrite either. Returns both paths, private first.
    pub fn write_files(&self, dir: &Path) -> Result<(PathBuf, PathBuf), KeyFileError> {
        let name = self.name();
        let valid_name = !name.is_empty()
            && !name.starts_with(['.', '-'])
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid_name {
            return Err(KeyFileError::InvalidName(name.to_owned()));
        }
        let private_path = dir.join(format!("{name}.key"));
        let public_path = dir.join(format!("{name}.pub"));
        for path in [&private_path, &public_path] {
            if path.exists() {
                return Err(KeyFileError::AlreadyExists { path: path.clone() });
            }
        }
        let public = self.wire(PUBLIC_TYPE, None);
        let private = self.wire(PRIVATE_TYPE, Some(BASE64.encode(self.seed())));
        write_new(&private_path, &private, 0o600)?;
        write_new(&public_path, &public, 0o644)?;
        Ok((private_path, public_path))
    }

    fn wire(&self, kind: &str, secret_key: Option<String>) -> WireKeyFile {
        WireKeyFile {
            kind: kind.to_owned(),
            version: FORMAT_VERSION,
            name: self.name().to_owned(),
            key_id: self.id(),
            public_key: self.public_key(),
            secret_key,
        }
    }
}

fn write_new(path: &Path, contents: &WireKeyFile, mode: u32) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    let mut text = serde_json::to_string_pretty(contents).map_err(|e| io(e.into()))?;
    text.push('\n');
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // The mode is set at creation, so the secret is never briefly readable.
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|error| {
        if error.kind() == std::io::ErrorKind::AlreadyExists {
            KeyFileError::AlreadyExists {
                path: path.to_owned(),
            }
        } else {
            io(error)
        }
    })?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(unix)]
fn refuse_if_shared(path: &Path) -> Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = fs::metadata(path)
        .map_err(|source| KeyFileError::Io {
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode()
        & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_if_shared(_path: &Path) -> Result<(), KeyFileError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_files_read_back_as_the_same_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pair = KeyPair::generate("release").expect("random");
        let (private_path, public_path) = pair.write_files(dir.path()).expect("write");
        let private = KeyFile::read(&private_path).expect("read private");
        let public = KeyFile::read(&public_path).expect("read public");
        assert!(private.is_private() && !public.is_private());
        assert_eq!(private.public_key(), pair.public_key());
        assert_eq!(public.public_key(), pair.public_key());
        assert_eq!(public.name(), "release");
    }

    #[cfg(unix)]
    #[test]
    fn private_key_is_0600_and_refused_when_shared() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("temp dir");
        let (private_path, _) = KeyPair::generate("k")
            .expect("random")
            .write_files(dir.path())
            .expect("write");
        let mode = fs::metadata(&private_path)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        fs::set_permissions(&private_path, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            KeyFile::read(&private_path),
            Err(KeyFileError::InsecurePermissions { mode: 0o644, .. })
        ));
    }

    #[test]
    fn refuses_to_overwrite_and_detects_a_forged_key_id() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pair = KeyPair::generate("k").expect("random");
        let (_, public_path) = pair.write_files(dir.path()).expect("write");
        assert!(matches!(
            pair.write_files(dir.path()),
            Err(KeyFileError::AlreadyExists { .. })
        ));
        let other = KeyPair::generate("other").expect("random").id();
        let text = fs::read_to_string(&public_path).expect("read");
        fs::write(
            &public_path,
            text.replace(&pair.id().to_string(), &other.to_string()),
        )
        .expect("write");
        assert!(matches!(
            KeyFile::read(&public_path),
            Err(KeyFileError::KeyIdMismatch { .. })
        ));
    }
}
