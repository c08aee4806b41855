//! A plugin author's first session: make a key, pack and sign a sample
//! crate, verify it, look inside.

use std::path::{Path, PathBuf};

use cloacina_tests::{cloacinactl, sample_crate, scratch, scratch_plugin};

/// A key pair and the ETL sample packed and signed with it, in `dir`.
pub struct SignedSample {
    pub dir: tempfile::TempDir,
    pub package: PathBuf,
    pub public_key: PathBuf,
    pub key_id: String,
}

impl SignedSample {
    pub fn new() -> Self {
        let dir = scratch();
        let generated = cloacinactl(
            dir.path(),
            &["--json", "key", "generate", "author", "--out", "keys"],
        )
        .success()
        .json();
        let key_id = generated["key_id"].as_str().expect("key id").to_owned();
        let etl = sample_crate("etl");
        cloacinactl(
            dir.path(),
            &[
                "pack",
                path(&etl),
                "--sign",
                "keys/author.key",
                "-o",
                "etl.cloacina",
            ],
        )
        .success();
        SignedSample {
            package: dir.path().join("etl.cloacina"),
            public_key: dir.path().join("keys/author.pub"),
            key_id,
            dir,
        }
    }

    pub fn verify(&self, package: &Path, extra: &[&str]) -> cloacina_tests::Outcome {
        let mut args = vec![
            "package",
            "verify",
            path(package),
            "--trusted-key",
            path(&self.public_key),
        ];
        args.extend(extra);
        cloacinactl(self.dir.path(), &args)
    }
}

pub fn path(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

#[test]
fn key_generate_writes_a_private_0600_key_and_a_public_key() {
    let dir = scratch();
    let out = cloacinactl(dir.path(), &["key", "generate", "release", "--out", "keys"]).success();
    let key_id = out
        .stdout
        .split_whitespace()
        .find(|word| word.len() == 32 && word.bytes().all(|b| b.is_ascii_hexdigit()))
        .expect("key id printed")
        .to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("keys/release.key"))
            .expect("private key written")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    for file in ["keys/release.key", "keys/release.pub"] {
        let shown = cloacinactl(dir.path(), &["--json", "key", "show", file])
            .success()
            .json();
        assert_eq!(shown["key_id"], key_id.as_str(), "{file}");
    }
    // A second generate must not overwrite the key.
    cloacinactl(dir.path(), &["key", "generate", "release", "--out", "keys"])
        .failure(6, "already exists");
}

#[test]
fn pack_sign_verify_and_inspect_the_etl_sample() {
    let sample = SignedSample::new();
    let verified = sample.verify(&sample.package, &["--json"]).success().json();
    assert_eq!(verified["verified"], true);
    assert_eq!(verified["name"], "etl");
    assert_eq!(verified["version"], "0.1.0");
    assert_eq!(verified["signer"]["key_id"], sample.key_id.as_str());

    let human = sample.verify(&sample.package, &[]).success();
    assert!(
        human
            .stdout
            .starts_with("verified etl 0.1.0: signed by `author`"),
        "{human}"
    );

    let inspected = cloacinactl(
        sample.dir.path(),
        &["--json", "package", "inspect", "etl.cloacina"],
    )
    .success()
    .json();
    let manifest = &inspected["manifest"];
    let tasks: Vec<&str> = manifest["declaration"]["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|task| task["id"].as_str())
        .collect();
    assert_eq!(tasks, ["extract", "transform", "load"]);
    assert_eq!(manifest["declaration"]["workflows"][0]["name"], "etl");
    let artifact = &manifest["artifacts"][0];
    assert!(
        artifact["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("native/") && p.ends_with("libetl.so")),
        "{artifact}"
    );
    assert_eq!(inspected["signature"]["key_id"], sample.key_id.as_str());
    assert_eq!(inspected["verification"]["status"], "not_checked");
}

#[test]
fn pack_reports_what_it_wrote_and_packing_twice_is_reproducible() {
    let sample = SignedSample::new();
    let etl = sample_crate("etl");
    let report = cloacinactl(
        sample.dir.path(),
        &[
            "--json",
            "pack",
            path(&etl),
            "--sign",
            "keys/author.key",
            "-o",
            "again.cloacina",
        ],
    )
    .success()
    .json();
    let bytes = std::fs::read(sample.dir.path().join("again.cloacina")).expect("written");
    assert_eq!(report["size"], bytes.len());
    assert_eq!(report["key_id"], sample.key_id.as_str());
    assert!(report["artifacts"][0]["kind"]["native"]["target"].is_string());
    assert_eq!(
        bytes,
        std::fs::read(&sample.package).expect("first package")
    );
}

#[test]
fn unsigned_packages_fail_verification_unless_allowed() {
    let dir = scratch();
    let etl = sample_crate("etl");
    cloacinactl(dir.path(), &["pack", path(&etl), "-o", "plain.cloacina"]).success();
    cloacinactl(dir.path(), &["package", "verify", "plain.cloacina"]).failure(3, "not signed");
    let allowed = cloacinactl(
        dir.path(),
        &["package", "verify", "plain.cloacina", "--allow-unsigned"],
    )
    .success();
    assert!(allowed.stdout.contains("UNSIGNED"), "{allowed}");
}

#[test]
fn a_private_key_readable_by_others_is_refused() {
    let sample = SignedSample::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let key = sample.dir.path().join("keys/author.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let etl = sample_crate("etl");
        cloacinactl(
            sample.dir.path(),
            &[
                "pack",
                path(&etl),
                "--sign",
                "keys/author.key",
                "-o",
                "x.cloacina",
            ],
        )
        .failure(6, "readable by others");
        assert!(!sample.dir.path().join("x.cloacina").exists());
    }
}

#[test]
fn a_cdylib_that_is_not_a_plugin_is_refused() {
    let dir = scratch();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"plain\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[workspace]\n",
    )
    .expect("write Cargo.toml");
    std::fs::create_dir(dir.path().join("src")).expect("src");
    std::fs::write(dir.path().join("src/lib.rs"), "pub fn nothing() {}\n").expect("lib.rs");
    cloacinactl(dir.path(), &["pack", "."]).failure(5, "not a cloacina plugin");
}

#[test]
fn a_misspelt_retry_policy_is_a_compile_error() {
    let crate_dir = scratch_plugin(
        "use cloacina_plugin::{Context, TaskResult, json, task};\n\
         #[task(retry(max_attempts = 2, backoff = \"exponentail\", delay_ms = 1))]\n\
         fn a(_ctx: &Context) -> TaskResult { Ok(json!({})) }\n\
         cloacina_plugin::plugin! { tasks: [a] }\n",
    );
    cloacinactl(crate_dir.path(), &["pack", "."])
        .failure(5, "`exponentail` is not one of: fixed, linear, exponential");
}

#[test]
fn a_misspelt_dependency_is_a_compile_error() {
    let crate_dir = scratch_plugin(
        "use cloacina_plugin::{Context, TaskResult, json, task};\n\
         #[task]\n\
         fn extract(_ctx: &Context) -> TaskResult { Ok(json!({})) }\n\
         #[task(dependencies = [extrct])]\n\
         fn load(_ctx: &Context) -> TaskResult { Ok(json!({})) }\n\
         cloacina_plugin::plugin! { tasks: [extract, load] }\n",
    );
    // rustc itself: "no `extrct` in the root", with "a similar name exists".
    cloacinactl(crate_dir.path(), &["pack", "."]).failure(5, "no `extrct`");
}

#[test]
fn a_bare_dependency_on_a_task_with_its_own_id_is_a_compile_error() {
    let crate_dir = scratch_plugin(
        "use cloacina_plugin::{Context, TaskResult, json, task};\n\
         #[task(id = \"load\")]\n\
         fn load_data(_ctx: &Context) -> TaskResult { Ok(json!({})) }\n\
         #[task(dependencies = [load_data])]\n\
         fn report(_ctx: &Context) -> TaskResult { Ok(json!({})) }\n\
         cloacina_plugin::plugin! { tasks: [load_data, report] }\n",
    );
    cloacinactl(crate_dir.path(), &["pack", "."])
        .failure(5, "dependency `load_data` is a task with another id");
}

#[test]
fn an_inconsistent_declaration_is_refused_at_pack_time() {
    let crate_dir = scratch_plugin(
        "use cloacina_plugin::{Context, TaskResult, json, task};\n\
         #[task(dependencies = [b])]\n\
         fn a(_ctx: &Context) -> TaskResult { Ok(json!({})) }\n\
         #[task(dependencies = [a])]\n\
         fn b(_ctx: &Context) -> TaskResult { Ok(json!({})) }\n\
         cloacina_plugin::plugin! { tasks: [a, b] }\n",
    );
    cloacinactl(crate_dir.path(), &["pack", "."]).failure(5, "cycle");
}

#[test]
fn json_failures_are_machine_readable() {
    let dir = scratch();
    std::fs::write(
        dir.path().join("noise.cloacina"),
        b"definitely not a package",
    )
    .expect("write");
    let out = cloacinactl(
        dir.path(),
        &["--json", "package", "verify", "noise.cloacina"],
    )
    .failure(4, "neither a gzip'd tar nor a zip");
    let body = out.json();
    assert_eq!(body["code"], "invalid_package");
    assert_eq!(body["exit_code"], 4);
}

#[test]
fn pack_target_all_records_a_native_library_and_a_component() {
    let dir = scratch();
    let retry = sample_crate("retry");
    let report = cloacinactl(
        dir.path(),
        &[
            "--json",
            "pack",
            path(&retry),
            "--target",
            "all",
            "-o",
            "retry.cloacina",
        ],
    )
    .success()
    .json();
    let kinds: Vec<String> = report["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .map(|artifact| artifact["path"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(kinds.len(), 2, "{report}");
    assert!(
        kinds[0].starts_with("native/") && kinds[0].ends_with("libretry.so"),
        "{kinds:?}"
    );
    assert_eq!(kinds[1], "wasm/retry.wasm");

    let wasm_only = cloacinactl(
        dir.path(),
        &[
            "--json",
            "pack",
            path(&retry),
            "--target",
            "wasm",
            "-o",
            "retry-wasm.cloacina",
        ],
    )
    .success()
    .json();
    assert_eq!(wasm_only["artifacts"][0]["kind"], "wasm");
    cloacinactl(
        dir.path(),
        &[
            "package",
            "verify",
            "retry-wasm.cloacina",
            "--allow-unsigned",
        ],
    )
    .success();
}

/// `cloacinactl new` writes a crate that, outside this repository, passes
/// its own harness test, packs (native and WebAssembly), is signed and runs.
#[test]
fn a_new_crate_builds_tests_packs_signs_and_runs() {
    let dir = scratch();
    let created = cloacinactl(dir.path(), &["--json", "new", "hello-plugin"])
        .success()
        .json();
    assert_eq!(created["workflow"], "hello_plugin");
    cloacinactl(dir.path(), &["new", "hello-plugin"]).failure(2, "already exists");
    cloacinactl(dir.path(), &["new", "9lives"]).failure(2, "not a crate name");
    cloacinactl(dir.path(), &["new", "serde"]).failure(2, "reserved");
    let crate_dir = dir.path().join("hello-plugin");

    let tested = std::process::Command::new(env!("CARGO"))
        .args(["test", "--quiet"])
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", cloacina_tests::plugin_target_dir())
        .output()
        .expect("cargo test");
    assert!(
        tested.status.success(),
        "the new crate's own test:\n{}{}",
        String::from_utf8_lossy(&tested.stdout),
        String::from_utf8_lossy(&tested.stderr)
    );

    let run = |args: &[&str]| cloacinactl(&crate_dir, args);
    run(&["key", "generate", "author", "--out", "keys"]).success();
    run(&[
        "pack",
        ".",
        "--target",
        "all",
        "--sign",
        "keys/author.key",
        "-o",
        "hello.cloacina",
    ])
    .success();
    for prefer in ["native", "wasm"] {
        let report = run(&[
            "--json",
            "run",
            "hello.cloacina",
            "--trusted-key",
            "keys/author.pub",
            "--prefer",
            prefer,
            "--context",
            r#"{"names": ["Ada", "Grace", "Edsger"]}"#,
        ])
        .success()
        .json();
        assert_eq!(report["final_context"]["count"], 3, "{prefer}: {report}");
    }
}
