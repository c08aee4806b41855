//! `cloacinactl key generate|show`.

use crate::output::out;
use std::path::Path;

use anyhow::Context as _;
use cloacina_signing::{KeyFile, KeyPair};
use serde::Serialize;

use crate::cli::KeyCommand;
use crate::failure::{Classify as _, Failure, FailureKind};
use crate::output;

#[derive(Serialize)]
struct KeyReport<'a> {
    name: &'a str,
    key_id: String,
    public_key: String,
    private: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    private_key_file: Option<&'a Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key_file: Option<&'a Path>,
}

pub fn run(command: KeyCommand, json: bool) -> Result<(), Failure> {
    match command {
        KeyCommand::Generate { name, out } => generate(&name, &out, json),
        KeyCommand::Show { file } => show(&file, json),
    }
}

fn generate(name: &str, out: &Path, json: bool) -> Result<(), Failure> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create {}", out.display()))
        .classify(FailureKind::Key)?;
    let pair = KeyPair::generate(name)
        .context("cannot read the system's random source")
        .classify(FailureKind::Key)?;
    let (private_path, public_path) = pair.write_files(out).classify(FailureKind::Key)?;
    if json {
        output::json(&KeyReport {
            name,
            key_id: pair.id().to_string(),
            public_key: pair.public_key().to_base64(),
            private: true,
            private_key_file: Some(&private_path),
            public_key_file: Some(&public_path),
        });
    } else {
        out!("generated key `{name}`, key id {}", pair.id());
        out!(
            "  private: {} (mode 0600; keep it secret, back it up)",
            private_path.display()
        );
        out!(
            "  public:  {} (give this to whoever verifies your packages)",
            public_path.display()
        );
    }
    Ok(())
}

fn show(file: &Path, json: bool) -> Result<(), Failure> {
    let key = KeyFile::read(file).classify(FailureKind::Key)?;
    let public = key.public_key();
    if json {
        output::json(&KeyReport {
            name: key.name(),
            key_id: public.id().to_string(),
            public_key: public.to_base64(),
            private: key.is_private(),
            private_key_file: None,
            public_key_file: None,
        });
    } else {
        let kind = if key.is_private() {
            "private"
        } else {
            "public"
        };
        out!("{}: {kind} key `{}`", file.display(), key.name());
        out!("  key id:     {}", public.id());
        out!("  public key: {}", public.to_base64());
    }
    Ok(())
}
