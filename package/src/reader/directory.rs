//! An extracted package directory, read with the same rules as an archive:
//! a cache directory is only as trustworthy as the disk it sits on, so it is
//! re-read and re-verified at every load rather than believed.

use std::fs;
use std::path::Path;

use super::ReadError;
use super::guard::{EntryGuard, EntryKind};

pub(super) fn read(root: &Path, guard: &mut EntryGuard<'_>) -> Result<(), ReadError> {
    walk(root, "", guard)
}

fn walk(dir: &Path, prefix: &str, guard: &mut EntryGuard<'_>) -> Result<(), ReadError> {
    let io = |entry: &str, error: std::io::Error| ReadError::Corrupt {
        entry: Some(entry.to_owned()),
        reason: error.to_string(),
    };
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(|error| io(prefix, error))?
        .collect::<Result<_, _>>()
        .map_err(|error| io(prefix, error))?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let relative = if prefix.is_empty() {
            name.into_owned()
        } else {
            format!("{prefix}/{name}")
        };
        // symlink_metadata: a link is judged as a link, never followed.
        let metadata = fs::symlink_metadata(entry.path()).map_err(|error| io(&relative, error))?;
        let file_type = metadata.file_type();
        let kind = if file_type.is_file() {
            EntryKind::File
        } else if file_type.is_dir() {
            EntryKind::Directory
        } else if file_type.is_symlink() {
            EntryKind::Forbidden("symbolic link")
        } else {
            EntryKind::Forbidden("special file (device, FIFO or socket)")
        };
        let raw = if kind == EntryKind::Directory {
            format!("{relative}/")
        } else {
            relative.clone()
        };
        if let Some(path) = guard.admit(raw.as_bytes(), kind, metadata.len())? {
            let file = fs::File::open(entry.path()).map_err(|error| io(&relative, error))?;
            guard.read_file(path, file, metadata.len())?;
        } else if kind == EntryKind::Directory {
            walk(&entry.path(), &relative, guard)?;
        }
    }
    Ok(())
}
