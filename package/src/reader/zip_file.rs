//! zip, read for compatibility with hand-made packages; never written.

use super::ReadError;
use super::guard::{EntryGuard, EntryKind};

/// `st_mode` file-type bits, as zip's "external attributes" carry them.
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

pub(super) fn read(
    archive: impl std::io::Read + std::io::Seek,
    guard: &mut EntryGuard<'_>,
) -> Result<(), ReadError> {
    let corrupt = |entry: Option<String>, reason: String| ReadError::Corrupt { entry, reason };
    let mut archive =
        zip::ZipArchive::new(archive).map_err(|error| corrupt(None, error.to_string()))?;
    for index in 0..archive.len() {
        let file = archive
            .by_index(index)
            .map_err(|error| corrupt(None, error.to_string()))?;
        let raw_path = file.name_raw().to_vec();
        let kind = classify(file.unix_mode(), file.is_dir());
        let declared = file.size();
        if let Some(path) = guard.admit(&raw_path, kind, declared)? {
            guard.read_file(path, file, declared)?;
        }
    }
    Ok(())
}

fn classify(unix_mode: Option<u32>, is_dir: bool) -> EntryKind {
    match (unix_mode.map(|mode| mode & S_IFMT), is_dir) {
        (Some(S_IFLNK), _) => EntryKind::Forbidden("symbolic link"),
        (Some(S_IFDIR), _) | (None | Some(0) | Some(S_IFREG), true) => EntryKind::Directory,
        (None | Some(0) | Some(S_IFREG), false) => EntryKind::File,
        (Some(_), _) => EntryKind::Forbidden("special file (device, FIFO or socket)"),
    }
}
