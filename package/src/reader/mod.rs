//! Reading untrusted archives.
//!
//! Everything that arrives (an upload, a dropped file, a file on the command
//! line) goes through [`read_archive`] before anything else looks at it. The
//! rules, all enforced while streaming so that nothing unsafe touches memory
//! beyond the limits or the disk at all:
//! - only regular files and directories (no symlinks, hard links, devices,
//!   FIFOs);
//! - relative paths of clean components: no `/` prefix, no `..`, no `.`
//!   except a leading `./`, no empty components, no backslashes, UTF-8 only;
//! - no duplicate paths, and no file where another entry needs a directory;
//! - caps on the number of entries, on each file's size (checked against the
//!   declared size before reading, and against the real size while reading),
//!   on the total unpacked size, and on the expansion ratio (so a bomb is
//!   refused early, whatever the caps).

mod directory;
mod guard;
mod hashing;
mod tar_gz;
mod zip_file;

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use cloacina_contract::Sha256Digest;

pub use guard::{FileDigest, Keep, ReadLimits};

/// The container formats read. Writers only produce [`ArchiveFormat::TarGz`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    TarGz,
    Zip,
}

/// The files of an archive that passed every rule, by normalised path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveContents {
    /// `None` for an extracted directory.
    pub format: Option<ArchiveFormat>,
    pub files: BTreeMap<String, ArchiveFile>,
}

/// One file's bytes, and their SHA-256 computed while they were read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveFile {
    pub bytes: Vec<u8>,
    pub sha256: Sha256Digest,
}

impl ArchiveContents {
    /// The files' bytes alone, by path.
    pub fn into_bytes(self) -> BTreeMap<String, Vec<u8>> {
        self.files
            .into_iter()
            .map(|(path, file)| (path, file.bytes))
            .collect()
    }
}

/// Why an archive was refused. Every variant that concerns one entry names it.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not a .cloacina package: the bytes are neither a gzip'd tar nor a zip archive")]
    NotAnArchive,
    #[error("archive is {size} bytes, over the limit of {limit} bytes")]
    ArchiveTooLarge { size: u64, limit: u64 },
    #[error("archive is corrupt or truncated{}: {reason}", at(.entry))]
    Corrupt {
        entry: Option<String>,
        reason: String,
    },
    #[error("entry `{entry}` is a {kind}: only regular files and directories are allowed")]
    ForbiddenEntryType { entry: String, kind: &'static str },
    #[error("entry `{entry}` has an unsafe path: {rule}")]
    UnsafePath { entry: String, rule: &'static str },
    #[error("entry `{entry}` is {size} bytes, over the per-file limit of {limit} bytes")]
    EntryTooLarge {
        entry: String,
        size: u64,
        limit: u64,
    },
    #[error("entry `{entry}` takes the unpacked total over the limit of {limit} bytes")]
    TotalTooLarge { entry: String, limit: u64 },
    #[error(
        "entry `{entry}` takes the unpacked size over {ratio} times the archive size: refused as a decompression bomb"
    )]
    ExpansionTooHigh { entry: String, ratio: u64 },
    #[error("entry `{entry}` is one more than the limit of {limit} entries")]
    TooManyEntries { entry: String, limit: usize },
    #[error("entry `{entry}` appears twice")]
    DuplicateEntry { entry: String },
    #[error(
        "entry `{entry}` conflicts with entry `{other}`: one is a file, the other needs it to be a directory"
    )]
    PathConflict { entry: String, other: String },
    /// Not the archive's fault: the disk it was being extracted to failed.
    #[error("cannot write entry `{entry}` to disk")]
    Write {
        entry: String,
        #[source]
        source: std::io::Error,
    },
}

impl ReadError {
    /// True when the archive itself is at fault (refuse it); false when
    /// this host failed to store it (try again later).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, ReadError::Write { .. })
    }
}

fn at(entry: &Option<String>) -> String {
    entry
        .as_ref()
        .map(|entry| format!(" at entry `{entry}`"))
        .unwrap_or_default()
}

/// Reads an untrusted archive, detecting the format by its magic bytes.
pub fn read_archive(bytes: &[u8], limits: &ReadLimits) -> Result<ArchiveContents, ReadError> {
    let size = bytes.len() as u64;
    let mut guard = guard::EntryGuard::new(limits, size, Keep::Everything);
    let format = read_into(Cursor::new(bytes), size, &mut guard)?;
    Ok(ArchiveContents {
        format: Some(format),
        files: guard.into_files(),
    })
}

/// What [`scan_archive`] found: every file's size and digest, and the
/// bytes of the files it was asked to keep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScannedArchive {
    pub files: BTreeMap<String, FileDigest>,
    pub kept: BTreeMap<String, Vec<u8>>,
}

/// Reads an untrusted archive of `size` bytes under the same rules as
/// [`read_archive`], holding in memory only the files `keep` names (and
/// writing the others to disk when it says so): memory stays bounded by
/// the kept files, whatever the archive unpacks to.
pub fn scan_archive<R: Read + Seek>(
    archive: R,
    size: u64,
    limits: &ReadLimits,
    keep: Keep<'_>,
) -> Result<ScannedArchive, ReadError> {
    let mut guard = guard::EntryGuard::new(limits, size, keep);
    read_into(archive, size, &mut guard)?;
    let (files, kept) = guard.into_parts();
    Ok(ScannedArchive { files, kept })
}

fn read_into<R: Read + Seek>(
    mut archive: R,
    size: u64,
    guard: &mut guard::EntryGuard<'_>,
) -> Result<ArchiveFormat, ReadError> {
    if size > guard.limits().max_archive_size {
        return Err(ReadError::ArchiveTooLarge {
            size,
            limit: guard.limits().max_archive_size,
        });
    }
    let corrupt = |error: std::io::Error| ReadError::Corrupt {
        entry: None,
        reason: error.to_string(),
    };
    let mut magic = [0u8; 4];
    let read = read_up_to(&mut archive, &mut magic).map_err(corrupt)?;
    archive.seek(SeekFrom::Start(0)).map_err(corrupt)?;
    let format = detect(&magic[..read]).ok_or(ReadError::NotAnArchive)?;
    match format {
        ArchiveFormat::TarGz => tar_gz::read(archive, guard)?,
        ArchiveFormat::Zip => zip_file::read(archive, guard)?,
    }
    Ok(format)
}

/// Fills `buffer` as far as the reader goes.
fn read_up_to(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// The container format that `prefix` (an archive's first bytes) starts,
/// if any: enough to refuse an upload at its first bytes.
pub fn detect(prefix: &[u8]) -> Option<ArchiveFormat> {
    match prefix {
        [0x1f, 0x8b, ..] => Some(ArchiveFormat::TarGz),
        [b'P', b'K', 3, 4, ..] | [b'P', b'K', 5, 6, ..] => Some(ArchiveFormat::Zip),
        _ => None,
    }
}

/// Reads an extracted package directory under the same rules as an archive
/// (links and special files refused, the same caps), so that a package
/// loaded from the cache is verified as thoroughly as an upload.
pub fn read_directory(root: &Path, limits: &ReadLimits) -> Result<ArchiveContents, ReadError> {
    // The expansion ratio means nothing without compression.
    let mut guard = guard::EntryGuard::new(limits, u64::MAX, Keep::Everything);
    directory::read(root, &mut guard)?;
    Ok(ArchiveContents {
        format: None,
        files: guard.into_files(),
    })
}
