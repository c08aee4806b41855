//! `cloacinactl trust` and `package upload` against a host's data
//! directory: uploads verify against the host's trust store, are
//! idempotent, and refuse other bytes under a registered version.

use cloacina_tests::{cloacinactl, sample_crate, scratch};

use crate::packaging::path;

#[test]
fn uploads_are_verified_against_the_hosts_trust_store() {
    let dir = scratch();
    let run = |args: &[&str]| cloacinactl(dir.path(), args);
    run(&["key", "generate", "author", "--out", "keys"]).success();
    run(&["key", "generate", "other", "--out", "keys"]).success();
    let crate_dir = sample_crate("etl");
    let etl = path(&crate_dir);
    run(&[
        "pack",
        etl,
        "--sign",
        "keys/author.key",
        "-o",
        "etl.cloacina",
    ])
    .success();
    run(&[
        "pack",
        etl,
        "--sign",
        "keys/other.key",
        "-o",
        "etl-other.cloacina",
    ])
    .success();
    fn with_home<'a>(args: &[&'a str]) -> Vec<&'a str> {
        [args, &["--home", "host"][..]].concat()
    }

    // Nobody is trusted yet.
    run(&with_home(&["package", "upload", "etl.cloacina"])).failure(3, "verification failed");

    let added = run(&with_home(&["--json", "trust", "add", "keys/author.pub"]))
        .success()
        .json();
    let author = added["key_id"].as_str().expect("key id").to_owned();
    let first = run(&with_home(&["--json", "package", "upload", "etl.cloacina"]))
        .success()
        .json();
    assert_eq!(first["created"], true);
    assert_eq!(first["record"]["name"], "etl");
    assert_eq!(first["record"]["status"]["status"], "pending");
    assert_eq!(first["record"]["signer_key_id"], author.as_str());
    let again = run(&with_home(&["--json", "package", "upload", "etl.cloacina"]))
        .success()
        .json();
    assert_eq!(
        again["created"], false,
        "the same bytes again is not an error"
    );

    // Other bytes under the same name and version are refused.
    run(&with_home(&["trust", "add", "keys/other.pub"])).success();
    run(&with_home(&["package", "upload", "etl-other.cloacina"]))
        .failure(9, "already registered with other content");

    // Both keys are listed.
    let listed = run(&with_home(&["--json", "trust", "list"]))
        .success()
        .json();
    assert_eq!(listed["keys"].as_array().expect("keys").len(), 2);

    // Revoked: its packages stop verifying, and it cannot come back.
    run(&with_home(&["trust", "revoke", &author])).success();
    run(&with_home(&[
        "package",
        "upload",
        "etl.cloacina",
        "--tenant",
        "acme",
    ]))
    .failure(3, "revoked");
    run(&with_home(&["trust", "add", "keys/author.pub"])).failure(9, "revoked");
    let listed = run(&with_home(&["trust", "list"])).success();
    assert!(listed.stdout.contains("REVOKED"), "{listed}");
}
