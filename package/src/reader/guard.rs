//! The rules every entry passes, whatever the container format.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use super::hashing::{Streamed, copy_and_hash};
use super::{ArchiveFile, ReadError};
use cloacina_contract::Sha256Digest;

/// Caps applied while reading an untrusted archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadLimits {
    /// The archive's own size.
    pub max_archive_size: u64,
    /// Entries of any kind, directories included.
    pub max_entries: usize,
    /// One file's unpacked size.
    pub max_file_size: u64,
    /// All files' unpacked size.
    pub max_total_size: u64,
    /// Unpacked size over archive size, beyond a first mebibyte of slack.
    pub max_expansion_ratio: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        const MIB: u64 = 1024 * 1024;
        ReadLimits {
            max_archive_size: 512 * MIB,
            max_entries: 1024,
            max_file_size: 512 * MIB,
            max_total_size: 1024 * MIB,
            max_expansion_ratio: 100,
        }
    }
}

/// The largest file a streaming read keeps in memory (manifest, signature).
pub const MAX_KEPT_FILE: u64 = 4 * 1024 * 1024;

/// Unpacked bytes allowed regardless of ratio, so tiny packages never trip it.
const RATIO_SLACK: u64 = 1024 * 1024;

/// Longest path accepted, in bytes.
const MAX_PATH_LEN: usize = 512;

/// What an entry is, as far as the rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EntryKind {
    File,
    Directory,
    Forbidden(&'static str),
}

/// What the reader keeps of each file once its rules are checked.
#[derive(Debug, Clone, Copy)]
pub enum Keep<'p> {
    /// Every file's bytes, in memory.
    Everything,
    /// The bytes of the files named here only (small ones: the manifest and
    /// the signature); of every other file, its size and SHA-256.
    Only(&'p [&'p str]),
    /// As `Only`, and every other file is written under this directory as
    /// it streams past, at its relative path.
    OnlyAndWriteUnder(&'p [&'p str], &'p std::path::Path),
}

/// Tracks what has been read and enforces the rules entry by entry.
pub(super) struct EntryGuard<'a> {
    limits: &'a ReadLimits,
    keep: Keep<'a>,
    archive_size: u64,
    entries: usize,
    total: u64,
    /// Every file read: its size and digest.
    files: BTreeMap<String, FileDigest>,
    /// The bytes of the files kept.
    contents: BTreeMap<String, Vec<u8>>,
    explicit_dirs: BTreeSet<String>,
    implied_dirs: BTreeMap<String, String>,
}

/// A file's size and SHA-256, computed as it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileDigest {
    pub size: u64,
    pub sha256: Sha256Digest,
}

impl<'a> EntryGuard<'a> {
    pub(super) fn new(limits: &'a ReadLimits, archive_size: u64, keep: Keep<'a>) -> Self {
        EntryGuard {
            limits,
            keep,
            archive_size,
            entries: 0,
            total: 0,
            files: BTreeMap::new(),
            contents: BTreeMap::new(),
            explicit_dirs: BTreeSet::new(),
            implied_dirs: BTreeMap::new(),
        }
    }

    pub(super) fn limits(&self) -> &ReadLimits {
        self.limits
    }

    /// Checks an entry's header. Returns the normalised path of a file to
    /// read, or `None` for a directory (nothing to read).
    pub(super) fn admit(
        &mut self,
        raw_path: &[u8],
        kind: EntryKind,
        declared_size: u64,
    ) -> Result<Option<String>, ReadError> {
        let shown = String::from_utf8_lossy(raw_path).into_owned();
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(ReadError::TooManyEntries {
                entry: shown,
                limit: self.limits.max_entries,
            });
        }
        if let EntryKind::Forbidden(kind) = kind {
            return Err(ReadError::ForbiddenEntryType { entry: shown, kind });
        }
        let path = normalise(raw_path, kind == EntryKind::Directory)
            .map_err(|rule| ReadError::UnsafePath { entry: shown, rule })?;
        let Some(path) = path else {
            return Ok(None); // the archive's root directory, `./`
        };
        match kind {
            EntryKind::Directory => {
                self.admit_directory(path)?;
                Ok(None)
            }
            _ => {
                self.check_declared_size(&path, declared_size)?;
                self.admit_file_path(&path)?;
                Ok(Some(path))
            }
        }
    }

    fn admit_directory(&mut self, path: String) -> Result<(), ReadError> {
        if self.files.contains_key(&path) {
            return Err(ReadError::PathConflict {
                other: path.clone(),
                entry: path,
            });
        }
        self.check_ancestors(&path)?;
        if !self.explicit_dirs.insert(path.clone()) {
            return Err(ReadError::DuplicateEntry { entry: path });
        }
        Ok(())
    }

    fn admit_file_path(&mut self, path: &str) -> Result<(), ReadError> {
        if self.files.contains_key(path) {
            return Err(ReadError::DuplicateEntry {
                entry: path.to_owned(),
            });
        }
        if self.explicit_dirs.contains(path) {
            return Err(ReadError::PathConflict {
                entry: path.to_owned(),
                other: path.to_owned(),
            });
        }
        if let Some(child) = self.implied_dirs.get(path) {
            return Err(ReadError::PathConflict {
                entry: path.to_owned(),
                other: child.clone(),
            });
        }
        self.check_ancestors(path)?;
        let mut ancestor = path;
        while let Some((parent, _)) = ancestor.rsplit_once('/') {
            self.implied_dirs
                .entry(parent.to_owned())
                .or_insert_with(|| path.to_owned());
            ancestor = parent;
        }
        Ok(())
    }

    fn check_ancestors(&self, path: &str) -> Result<(), ReadError> {
        let mut ancestor = path;
        while let Some((parent, _)) = ancestor.rsplit_once('/') {
            if self.files.contains_key(parent) {
                return Err(ReadError::PathConflict {
                    entry: path.to_owned(),
                    other: parent.to_owned(),
                });
            }
            ancestor = parent;
        }
        Ok(())
    }

    fn check_declared_size(&self, path: &str, size: u64) -> Result<(), ReadError> {
        if size > self.limits.max_file_size {
            return Err(ReadError::EntryTooLarge {
                entry: path.to_owned(),
                size,
                limit: self.limits.max_file_size,
            });
        }
        if self.total.saturating_add(size) > self.limits.max_total_size {
            return Err(ReadError::TotalTooLarge {
                entry: path.to_owned(),
                limit: self.limits.max_total_size,
            });
        }
        if self.total.saturating_add(size) > self.ratio_budget() {
            return Err(self.expansion_error(path));
        }
        Ok(())
    }

    fn ratio_budget(&self) -> u64 {
        self.archive_size
            .saturating_mul(self.limits.max_expansion_ratio)
            .saturating_add(RATIO_SLACK)
    }

    fn expansion_error(&self, path: &str) -> ReadError {
        ReadError::ExpansionTooHigh {
            entry: path.to_owned(),
            ratio: self.limits.max_expansion_ratio,
        }
    }

    /// Reads an admitted file's contents, never more than the caps allow,
    /// whatever its header claimed.
    pub(super) fn read_file(
        &mut self,
        path: String,
        contents: impl Read,
        declared_size: u64,
    ) -> Result<(), ReadError> {
        // Files a streaming read keeps in memory (the manifest and the
        // signature) are small by nature: capped far below other files, so
        // keeping them never costs what the archive could unpack to.
        let kept = matches!(self.keep, Keep::Only(kept) | Keep::OnlyAndWriteUnder(kept, _) if kept.contains(&path.as_str()));
        let per_file = if kept {
            self.limits.max_file_size.min(MAX_KEPT_FILE)
        } else {
            self.limits.max_file_size
        };
        let total_left = self.limits.max_total_size - self.total;
        let ratio_left = self.ratio_budget().saturating_sub(self.total);
        let limit = per_file.min(total_left).min(ratio_left);
        let corrupt = |error: std::io::Error| ReadError::Corrupt {
            entry: Some(path.clone()),
            reason: error.to_string(),
        };
        let (size, sha256) = match self.keep {
            Keep::Everything => self.keep_bytes(&path, contents, declared_size.min(limit), limit),
            Keep::Only(kept) | Keep::OnlyAndWriteUnder(kept, _)
                if kept.contains(&path.as_str()) =>
            {
                self.keep_bytes(&path, contents, declared_size.min(limit), limit)
            }
            Keep::Only(_) => copy_and_hash(contents, std::io::sink(), limit + 1, declared_size),
            Keep::OnlyAndWriteUnder(_, root) => {
                write_under(root, &path, contents, limit + 1, declared_size)
            }
        }
        .map_err(|error| match error {
            Streamed::Read(error) => corrupt(error),
            Streamed::Write(error) => ReadError::Write {
                entry: path.clone(),
                source: error,
            },
        })?;
        if size > limit {
            return Err(if size > per_file {
                ReadError::EntryTooLarge {
                    entry: path,
                    size,
                    limit: per_file,
                }
            } else if size > total_left {
                ReadError::TotalTooLarge {
                    entry: path,
                    limit: self.limits.max_total_size,
                }
            } else {
                self.expansion_error(&path)
            });
        }
        self.total += size;
        self.files.insert(path, FileDigest { size, sha256 });
        Ok(())
    }

    /// Reads a file into memory (at most `limit + 1` bytes, so an overrun
    /// is seen), keeping its bytes.
    fn keep_bytes(
        &mut self,
        path: &str,
        contents: impl Read,
        expected: u64,
        limit: u64,
    ) -> Result<(u64, Sha256Digest), Streamed> {
        let (data, sha256) =
            read_and_hash(contents, expected, limit + 1).map_err(Streamed::Read)?;
        let size = data.len() as u64;
        self.contents.insert(path.to_owned(), data);
        Ok((size, sha256))
    }

    /// Every file's size and digest, and the bytes of those kept.
    pub(super) fn into_parts(self) -> (BTreeMap<String, FileDigest>, BTreeMap<String, Vec<u8>>) {
        (self.files, self.contents)
    }

    /// Every file with its bytes (for [`Keep::Everything`]).
    pub(super) fn into_files(self) -> BTreeMap<String, ArchiveFile> {
        let (files, mut contents) = self.into_parts();
        files
            .into_iter()
            .map(|(path, digest)| {
                let bytes = contents.remove(&path).unwrap_or_default();
                (
                    path,
                    ArchiveFile {
                        bytes,
                        sha256: digest.sha256,
                    },
                )
            })
            .collect()
    }
}

/// Streams a file to `root/path`, hashing it. Paths are normalised
/// relative components, so the join stays under `root`, and `admit`
/// refused duplicates, so nothing is overwritten.
fn write_under(
    root: &std::path::Path,
    path: &str,
    contents: impl Read,
    cap: u64,
    expected: u64,
) -> Result<(u64, Sha256Digest), Streamed> {
    let destination = root.join(path);
    if let Some(parent) = destination.parent() {
        std::fs::create_dir_all(parent).map_err(Streamed::Write)?;
    }
    let file = std::fs::File::create(&destination).map_err(Streamed::Write)?;
    let mut file = std::io::BufWriter::new(file);
    let copied = copy_and_hash(contents, &mut file, cap, expected)?;
    std::io::Write::flush(&mut file).map_err(Streamed::Write)?;
    Ok(copied)
}

/// Reads at most `cap` bytes, hashing each chunk while it is still in
/// cache: verification then costs no second pass over the file.
fn read_and_hash(
    contents: impl Read,
    expected: u64,
    cap: u64,
) -> std::io::Result<(Vec<u8>, Sha256Digest)> {
    let mut data = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    match copy_and_hash(contents, &mut data, cap, expected) {
        Ok((_, sha256)) => Ok((data, sha256)),
        Err(Streamed::Read(error) | Streamed::Write(error)) => Err(error),
    }
}

/// The path with any leading `./` and a directory's trailing `/` removed;
/// `None` for the archive root itself. Errors name the broken rule.
fn normalise(raw: &[u8], is_directory: bool) -> Result<Option<String>, &'static str> {
    let text = std::str::from_utf8(raw).map_err(|_| "the path is not UTF-8")?;
    if text.len() > MAX_PATH_LEN {
        return Err("the path is longer than 512 bytes");
    }
    if text.starts_with('/') {
        return Err("absolute paths are not allowed");
    }
    if text.contains('\\') {
        return Err("backslashes are not allowed in paths");
    }
    if text.chars().any(char::is_control) {
        return Err("control characters are not allowed in paths");
    }
    let mut rest = text;
    while let Some(stripped) = rest.strip_prefix("./") {
        rest = stripped;
    }
    if is_directory {
        rest = rest.strip_suffix('/').unwrap_or(rest);
    }
    if rest.is_empty() || rest == "." {
        return if is_directory {
            Ok(None)
        } else {
            Err("a file entry has an empty path")
        };
    }
    for component in rest.split('/') {
        match component {
            "" => return Err("empty path components (`//` or a trailing `/`) are not allowed"),
            ".." => return Err("parent-directory components (`..`) are not allowed"),
            "." => return Err("`.` components are only allowed as a leading `./`"),
            _ => {}
        }
    }
    Ok(Some(rest.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn normalises_leading_dot_slash_and_directory_slash() {
        assert_eq!(normalise(b"./a/b", false), Ok(Some("a/b".into())));
        assert_eq!(normalise(b"./", true), Ok(None));
        assert_eq!(normalise(b"native/", true), Ok(Some("native".into())));
    }

    #[test]
    fn names_the_rule_for_each_unsafe_path() {
        for (path, word) in [
            (&b"/etc/passwd"[..], "absolute"),
            (b"../x", "`..`"),
            (b"a/../../x", "`..`"),
            (b"a//b", "empty"),
            (b"a/./b", "`.`"),
            (b"a\\b", "backslash"),
            (b"\xff", "UTF-8"),
            (b"a\nb", "control"),
        ] {
            let rule = normalise(path, false).expect_err("unsafe");
            assert!(rule.contains(word), "{path:?}: {rule}");
        }
    }
}
