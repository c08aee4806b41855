//! gzip'd tar, the format the pack tool writes.

use flate2::read::GzDecoder;
use tar::EntryType;

use super::ReadError;
use super::guard::{EntryGuard, EntryKind};

pub(super) fn read(
    archive: impl std::io::Read,
    guard: &mut EntryGuard<'_>,
) -> Result<(), ReadError> {
    let corrupt = |entry: Option<String>, error: std::io::Error| ReadError::Corrupt {
        entry,
        reason: error.to_string(),
    };
    let mut archive = tar::Archive::new(GzDecoder::new(std::io::BufReader::new(archive)));
    let entries = archive.entries().map_err(|error| corrupt(None, error))?;
    let mut last = None;
    for entry in entries {
        let entry = entry.map_err(|error| corrupt(last.clone(), error))?;
        let raw_path = entry.path_bytes().into_owned();
        let kind = classify(entry.header().entry_type());
        // `size()` honours a PAX size record; the header field may be octal
        // garbage, which `tar` reports as an error.
        let declared = entry.header().entry_size().map_err(|error| {
            corrupt(Some(String::from_utf8_lossy(&raw_path).into_owned()), error)
        })?;
        let declared = declared.max(entry.size());
        if let Some(path) = guard.admit(&raw_path, kind, declared)? {
            last = Some(path.clone());
            guard.read_file(path, entry, declared)?;
        }
    }
    Ok(())
}

fn classify(entry_type: EntryType) -> EntryKind {
    match entry_type {
        EntryType::Regular | EntryType::Continuous => EntryKind::File,
        EntryType::Directory => EntryKind::Directory,
        EntryType::Symlink => EntryKind::Forbidden("symbolic link"),
        EntryType::Link => EntryKind::Forbidden("hard link"),
        EntryType::Char => EntryKind::Forbidden("character device"),
        EntryType::Block => EntryKind::Forbidden("block device"),
        EntryType::Fifo => EntryKind::Forbidden("FIFO"),
        EntryType::GNUSparse => EntryKind::Forbidden("sparse file"),
        EntryType::XGlobalHeader => EntryKind::Forbidden("global PAX header"),
        _ => EntryKind::Forbidden("entry of an unknown type"),
    }
}
