//! Archives an attacker would send. Each is refused by the reader with a
//! typed error naming the entry and the rule, before anything reaches disk.

use cloacina_package::reader::read_archive;
use cloacina_package::{ReadError, ReadLimits};
use tar::EntryType;

use crate::fixtures::{RawEntry, raw_tar_gz, signed_package, zero_bomb};

fn refuse(bytes: &[u8]) -> ReadError {
    read_archive(bytes, &ReadLimits::default()).expect_err("hostile archive must be refused")
}

fn assert_names(error: &ReadError, entry: &str, rule: &str) {
    let message = error.to_string();
    assert!(
        message.contains(entry) && message.contains(rule),
        "`{message}` should name `{entry}` and `{rule}`"
    );
}

#[test]
fn parent_directory_traversal() {
    for name in ["../x", "a/../../x", "./../x"] {
        let error = refuse(&raw_tar_gz([RawEntry::file(name, "evil")]));
        assert!(
            matches!(error, ReadError::UnsafePath { .. }),
            "{name}: {error}"
        );
        assert_names(&error, name, "`..`");
    }
}

#[test]
fn absolute_paths() {
    let error = refuse(&raw_tar_gz([RawEntry::file("/etc/x", "evil")]));
    assert!(matches!(error, ReadError::UnsafePath { .. }));
    assert_names(&error, "/etc/x", "absolute");
}

#[test]
fn symlinks_hard_links_and_devices() {
    let cases = [
        (EntryType::Symlink, "symbolic link"),
        (EntryType::Link, "hard link"),
        (EntryType::Char, "character device"),
        (EntryType::Block, "block device"),
        (EntryType::Fifo, "FIFO"),
    ];
    for (kind, word) in cases {
        let mut entry = RawEntry::of_kind("innocent", kind);
        entry.link = Some(b"/etc/passwd");
        let error = refuse(&raw_tar_gz([entry]));
        assert!(
            matches!(error, ReadError::ForbiddenEntryType { .. }),
            "{word}: {error}"
        );
        assert_names(&error, "innocent", word);
    }
}

#[test]
fn an_entry_declaring_ten_gibibytes_is_refused_from_its_header() {
    let mut entry = RawEntry::file("huge.bin", Vec::new());
    entry.declared_size = Some(10 << 30);
    let error = refuse(&raw_tar_gz([entry]));
    assert!(
        matches!(error, ReadError::EntryTooLarge { size, .. } if size == 10 << 30),
        "{error}"
    );
    assert_names(&error, "huge.bin", "per-file limit");
}

#[test]
fn a_compression_bomb_is_refused_early() {
    // 64 MiB of zeros gzip to about 64 KiB: a thousandfold expansion.
    let bomb = zero_bomb(64 << 20);
    assert!(
        bomb.len() < 256 << 10,
        "bomb should be small: {}",
        bomb.len()
    );
    let error = refuse(&bomb);
    assert!(
        matches!(error, ReadError::ExpansionTooHigh { .. }),
        "{error}"
    );
    assert_names(&error, "bomb.bin", "decompression bomb");

    // With the ratio check out of the way, the total cap still holds.
    let limits = ReadLimits {
        max_expansion_ratio: u64::MAX,
        max_total_size: 8 << 20,
        ..ReadLimits::default()
    };
    let error = read_archive(&bomb, &limits).expect_err("over the total cap");
    assert!(matches!(error, ReadError::TotalTooLarge { .. }), "{error}");
}

#[test]
fn a_file_longer_than_its_header_says_cannot_slip_past_the_cap() {
    let limits = ReadLimits {
        max_file_size: 1024,
        ..ReadLimits::default()
    };
    let mut entry = RawEntry::file("liar.bin", vec![7; 4096]);
    entry.declared_size = Some(4096);
    let error = read_archive(&raw_tar_gz([entry]), &limits).expect_err("over the cap");
    assert!(matches!(error, ReadError::EntryTooLarge { .. }), "{error}");
}

#[test]
fn a_hundred_thousand_tiny_entries() {
    let entries = (0..100_000).map(|i| RawEntry::file(format!("f{i}"), "x"));
    let error = refuse(&raw_tar_gz(entries));
    assert!(
        matches!(error, ReadError::TooManyEntries { limit: 1024, .. }),
        "{error}"
    );
    assert_names(&error, "f1024", "1024 entries");
}

#[test]
fn duplicate_names() {
    let error = refuse(&raw_tar_gz([
        RawEntry::file("manifest.json", "{}"),
        RawEntry::file("./manifest.json", "{\"evil\":1}"),
    ]));
    assert!(matches!(error, ReadError::DuplicateEntry { .. }), "{error}");
    assert_names(&error, "manifest.json", "twice");
}

#[test]
fn a_file_where_a_directory_is_needed() {
    let error = refuse(&raw_tar_gz([
        RawEntry::file("native", "file"),
        RawEntry::file("native/lib.so", "lib"),
    ]));
    assert!(matches!(error, ReadError::PathConflict { .. }), "{error}");
}

#[test]
fn a_truncated_gzip_stream() {
    let (_, bytes) = signed_package();
    let error = refuse(&bytes[..bytes.len() / 2]);
    assert!(matches!(error, ReadError::Corrupt { .. }), "{error}");
}

#[test]
fn random_bytes() {
    let noise: Vec<u8> = (0u32..4096)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert!(matches!(refuse(&noise), ReadError::NotAnArchive));
    let mut gzip_noise = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    gzip_noise.extend(&noise);
    assert!(matches!(refuse(&gzip_noise), ReadError::Corrupt { .. }));
    assert!(matches!(refuse(b""), ReadError::NotAnArchive));
}

#[test]
fn hostile_zip_entries() {
    use std::io::Write as _;
    let zip_with = |name: &str, mode: u32| {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .unix_permissions(mode);
        writer.start_file(name, options).expect("zip entry");
        writer.write_all(b"/etc/passwd").expect("zip data");
        writer.finish().expect("zip").into_inner()
    };
    let error = refuse(&zip_with("../escape", 0o100_644));
    assert!(matches!(error, ReadError::UnsafePath { .. }), "{error}");

    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer
        .add_symlink(
            "link",
            "/etc/passwd",
            zip::write::SimpleFileOptions::default(),
        )
        .expect("zip symlink");
    let symlink = writer.finish().expect("zip").into_inner();
    let error = refuse(&symlink);
    assert!(
        matches!(error, ReadError::ForbiddenEntryType { .. }),
        "{error}"
    );
    assert_names(&error, "link", "symbolic link");
}
