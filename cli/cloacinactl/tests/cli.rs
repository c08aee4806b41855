//! The command line's own surface: help that teaches, usage errors that say
//! so with exit code 2. (Journeys through the commands live in the
//! workspace's `tests/` crate; this test also makes `cargo test --workspace`
//! build the binary those journeys run.)

use std::process::Command;

fn cloacinactl(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cloacinactl"))
        .args(args)
        .output()
        .expect("the binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn long_help_documents_every_exit_code_and_a_first_session() {
    let (code, stdout, _) = cloacinactl(&["--help"]);
    assert_eq!(code, Some(0));
    for needle in [
        "key generate",
        "pack",
        "package verify",
        "Exit codes:",
        "  6  a key file",
    ] {
        assert!(
            stdout.contains(needle),
            "--help should mention `{needle}`:\n{stdout}"
        );
    }
}

#[test]
fn every_command_has_help() {
    for command in [
        &["key", "generate", "--help"][..],
        &["key", "show", "--help"],
        &["pack", "--help"],
        &["package", "verify", "--help"],
        &["package", "inspect", "--help"],
        &["graph", "--help"],
        &["graph", "list", "--help"],
        &["graph", "show", "--help"],
        &["graph", "push", "--help"],
        &["graph", "fire", "--help"],
        &["graph", "pause", "--help"],
        &["graph", "resume", "--help"],
        &["graph", "firings", "--help"],
        &["host", "--help"],
        &["host", "list", "--help"],
    ] {
        let (code, stdout, _) = cloacinactl(command);
        assert_eq!(code, Some(0), "{command:?}");
        assert!(stdout.contains("Usage:"), "{command:?}: {stdout}");
    }
}

#[test]
fn usage_errors_exit_with_two() {
    let (code, _, stderr) = cloacinactl(&["package", "verfy", "x.cloacina"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("verify"),
        "a typo should suggest the command: {stderr}"
    );
    let (code, _, _) = cloacinactl(&["pack", ".", "--target", "mips"]);
    assert_eq!(code, Some(2));
}

#[test]
fn graph_push_checks_every_line_before_connecting() {
    let file = std::env::temp_dir().join(format!("cloacinactl-push-{}.jsonl", std::process::id()));
    std::fs::write(&file, "{\"celsius\": 20}\n\n{\"celsius\": \n").expect("write");
    // No server listens there and no key is given: the input is refused first.
    let (code, stdout, stderr) = cloacinactl(&[
        "--json",
        "graph",
        "push",
        "temperature",
        file.to_str().expect("utf-8 path"),
        "--server",
        "http://127.0.0.1:9",
    ]);
    let _ = std::fs::remove_file(&file);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("line 3, column 11"), "{stderr}");
    assert!(stdout.contains("\"code\":\"usage\""), "{stdout}");
}
