//! Copying a file out of an archive while hashing it.
//!
//! Inflating is the slow half of reading a compressed package; hashing
//! is the other. For a large file the two run on separate threads: the
//! reading thread inflates the next chunk while a hashing thread digests
//! the previous one, so a file costs about the slower of the two instead
//! of their sum. Small files are hashed inline, where a thread would cost
//! more than it saves.

use std::io::{Read, Write};
use std::sync::mpsc;

use cloacina_contract::Sha256Digest;
use sha2::{Digest as _, Sha256};

/// Files at least this large (by their declared size) are hashed aside.
const HASH_ASIDE_FROM: u64 = 4 << 20;
/// Chunks read inline.
const INLINE_CHUNK: usize = 64 * 1024;
/// Chunks handed to the hashing thread: large enough that handing one
/// over costs nothing next to hashing it.
const ASIDE_CHUNK: usize = 256 * 1024;
/// Chunks in flight to the hashing thread, at most: the memory a large
/// file costs is this many chunks, whatever its size.
const IN_FLIGHT: usize = 4;

/// Which side of a copy failed.
pub(super) enum Streamed {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// Copies at most `cap` bytes of `contents` into `out`, hashing them on
/// the way. `expected` (the size the archive declares, not trusted)
/// only chooses how. Returns how many bytes were read and their digest.
pub(super) fn copy_and_hash(
    contents: impl Read,
    out: impl Write,
    cap: u64,
    expected: u64,
) -> Result<(u64, Sha256Digest), Streamed> {
    if expected >= HASH_ASIDE_FROM {
        copy_hashing_aside(contents, out, cap)
    } else {
        copy_hashing_inline(contents, out, cap)
    }
}

fn copy_hashing_inline(
    mut contents: impl Read,
    mut out: impl Write,
    cap: u64,
) -> Result<(u64, Sha256Digest), Streamed> {
    let mut chunk = vec![0u8; INLINE_CHUNK];
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let read = fill(&mut contents, &mut chunk, room(cap, size, INLINE_CHUNK))?;
        if read == 0 {
            break;
        }
        hasher.update(&chunk[..read]);
        out.write_all(&chunk[..read]).map_err(Streamed::Write)?;
        size += read as u64;
    }
    Ok((size, Sha256Digest(hasher.finalize().into())))
}

fn copy_hashing_aside(
    mut contents: impl Read,
    mut out: impl Write,
    cap: u64,
) -> Result<(u64, Sha256Digest), Streamed> {
    let (to_hasher, chunks) = mpsc::sync_channel::<(Vec<u8>, usize)>(IN_FLIGHT);
    let (give_back, returned) = mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        let hashing = std::thread::Builder::new()
            .name("cloacina-hash".into())
            .spawn_scoped(scope, move || {
                let mut hasher = Sha256::new();
                for (chunk, filled) in chunks {
                    hasher.update(&chunk[..filled]);
                    // The reader may have stopped; a chunk nobody reuses is dropped.
                    let _ = give_back.send(chunk);
                }
                Sha256Digest(hasher.finalize().into())
            });
        let Ok(hashing) = hashing else {
            // No thread to be had: hash on this one, as for a small file.
            return copy_hashing_inline(contents, out, cap);
        };
        let mut size = 0u64;
        let copied = loop {
            let mut chunk = returned
                .try_recv()
                .unwrap_or_else(|_| vec![0u8; ASIDE_CHUNK]);
            let read = match fill(&mut contents, &mut chunk, room(cap, size, ASIDE_CHUNK)) {
                Ok(0) => break Ok(()),
                Ok(read) => read,
                Err(error) => break Err(error),
            };
            if let Err(error) = out.write_all(&chunk[..read]) {
                break Err(Streamed::Write(error));
            }
            size += read as u64;
            if to_hasher.send((chunk, read)).is_err() {
                // The hashing thread only stops when the sender is gone,
                // or by panicking: its join below reports that.
                break Ok(());
            }
        };
        drop(to_hasher);
        let digest = hashing
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        copied.map(|()| (size, digest))
    })
}

/// How many bytes the next chunk may take: what is left under `cap`, at
/// most a chunk.
fn room(cap: u64, size: u64, chunk: usize) -> usize {
    usize::try_from(cap.saturating_sub(size))
        .unwrap_or(chunk)
        .min(chunk)
}

/// Reads into `chunk[..room]` until it is full or the file ends; the
/// number of bytes read (0 at the end, or when `room` is 0).
fn fill(contents: &mut impl Read, chunk: &mut [u8], room: usize) -> Result<usize, Streamed> {
    let mut filled = 0;
    while filled < room {
        match contents.read(&mut chunk[filled..room]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(Streamed::Read(error)),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(bytes: &[u8]) -> Sha256Digest {
        Sha256Digest(Sha256::digest(bytes).into())
    }

    fn bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn both_ways_copy_and_hash_the_same() {
        for len in [0, 1, 65_535, 65_536, 1 << 20, (1 << 20) + 12_345, 3 << 20] {
            let data = bytes(len);
            for expected in [0, HASH_ASIDE_FROM] {
                let mut out = Vec::new();
                let Ok((size, sha)) = copy_and_hash(&data[..], &mut out, u64::MAX, expected) else {
                    panic!("copy failed at {len}");
                };
                assert_eq!(size, len as u64);
                assert_eq!(sha, digest(&data), "length {len}, expected {expected}");
                assert_eq!(out, data);
            }
        }
    }

    #[test]
    fn both_ways_stop_at_the_cap() {
        let data = bytes(3 << 20);
        for expected in [0, HASH_ASIDE_FROM] {
            let cap = (2 << 20) + 7;
            let mut out = Vec::new();
            let Ok((size, sha)) = copy_and_hash(&data[..], &mut out, cap, expected) else {
                panic!("copy failed");
            };
            assert_eq!(size, cap);
            assert_eq!(sha, digest(&data[..cap as usize]));
        }
    }

    #[test]
    fn a_read_error_is_reported_from_either_way() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::other("broken"));
                }
                let n = buf.len().min(self.0);
                self.0 -= n;
                Ok(n)
            }
        }
        for expected in [0, HASH_ASIDE_FROM] {
            let outcome = copy_and_hash(Failing(2 << 20), std::io::sink(), u64::MAX, expected);
            assert!(matches!(outcome, Err(Streamed::Read(_))));
        }
    }
}
