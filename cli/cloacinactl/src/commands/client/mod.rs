//! The HTTP client commands (packages, workflows, executions, computation
//! graphs, hosts, tenants and API keys on a running server), on
//! `cloacina-client`: this module turns flags into a [`Client`], replies
//! into printed lines or `--json`, and refusals into exit codes.

pub mod audit;
pub mod executions;
pub mod graphs;
pub mod hosts;
pub mod keys;
pub mod packages;
pub mod tenants;
pub mod workflows;

use std::path::PathBuf;

use anyhow::{Context as _, anyhow};
use cloacina_client::{Client, ClientError, TlsRoots};
use cloacina_wire::RefusalKind;
use serde::{Deserialize, Serialize};

use crate::cli::ClientArgs;
use crate::failure::{Classify as _, Failure, FailureKind};
use crate::output;

const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// `client.toml`: defaults for the client flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    server: Option<String>,
    api_key: Option<String>,
    tenant: Option<String>,
    /// A PEM file of the certificates an https:// server's must come from.
    ca_cert: Option<PathBuf>,
}

fn profile(path: Option<&PathBuf>) -> Result<Profile, Failure> {
    let explicit = path.is_some();
    let path = match path {
        Some(path) => path.clone(),
        None => match cloacina_defaults::data_dir() {
            Some(home) => home.join("client.toml"),
            None => return Ok(Profile::default()),
        },
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text)
            .with_context(|| format!("cannot read the profile {}", path.display()))
            .classify(FailureKind::Usage),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && !explicit => {
            Ok(Profile::default())
        }
        Err(error) => Err(anyhow!(error))
            .with_context(|| format!("cannot read the profile {}", path.display()))
            .classify(FailureKind::Usage),
    }
}

/// A client for the server, key and tenant the flags, the environment
/// and the profile give, in that order.
pub fn connect(args: &ClientArgs) -> Result<Client, Failure> {
    connect_parts(
        args.server.clone(),
        args.api_key.clone(),
        args.tenant.clone(),
        args.ca_cert.clone(),
        args.profile.as_ref(),
    )
}

fn connect_parts(
    server: Option<String>,
    key: Option<String>,
    tenant: Option<String>,
    ca_cert: Option<PathBuf>,
    profile_path: Option<&PathBuf>,
) -> Result<Client, Failure> {
    let profile = profile(profile_path)?;
    let roots = match ca_cert.or(profile.ca_cert) {
        Some(path) => TlsRoots::from_pem_file(&path).map_err(|error| Failure {
            kind: FailureKind::Usage,
            error: anyhow::Error::new(error),
            hint: Some("--ca-cert (CLOACINA_CA_CERT) takes a PEM file of certificates"),
        })?,
        None => TlsRoots::public(),
    };
    let server = server
        .or(profile.server)
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    let key = key.or(profile.api_key).ok_or_else(|| Failure {
        kind: FailureKind::Usage,
        error: anyhow!("no API key"),
        hint: Some(
            "give --api-key, set CLOACINA_API_KEY, or put api_key in ~/.cloacina/client.toml",
        ),
    })?;
    let tenant = tenant.or(profile.tenant);
    let chosen = tenant.is_some();
    let tenant = tenant.unwrap_or_else(|| "public".to_owned());
    Ok(Client::new(&server, &key, &tenant)
        .with_tls_roots(roots)
        .with_tenant_chosen(chosen))
}

/// The one mapping from a server's answer to an exit code: a refused
/// package by its `reason` (the same codes as a local upload), anything
/// else by its status.
impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        let kind = match &error {
            ClientError::Refused { status, body, .. } => match (body.reason, *status) {
                (Some(reason), _) if reason != RefusalKind::Unknown => {
                    FailureKind::of_refusal(reason)
                }
                (_, 400 | 413 | 415) => FailureKind::Usage,
                (_, 401 | 403) => FailureKind::Denied,
                (_, 404) => FailureKind::NotFound,
                (_, 409) => FailureKind::Conflict,
                (_, 429 | 503) => FailureKind::Unavailable,
                (_, _) => FailureKind::Other,
            },
            // Could not connect or the connection broke: try again; a URL
            // that cannot work is not worth retrying.
            ClientError::Unreachable { source, .. } => match source.as_ref() {
                ureq::Error::Io(_)
                | ureq::Error::ConnectionFailed
                | ureq::Error::HostNotFound
                | ureq::Error::Timeout(_) => FailureKind::Unavailable,
                _ => FailureKind::Other,
            },
            ClientError::File { .. } | ClientError::Certificates { .. } => FailureKind::Usage,
            // Not transient: the same certificate will be refused again.
            ClientError::Tls { .. } => FailureKind::Other,
            // A socket the server closed, by its close code.
            ClientError::Closed { code, .. } => match code {
                4404 => FailureKind::NotFound,
                1008 => FailureKind::Denied,
                1009 => FailureKind::Usage,
                1001 | 1011 | 1013 => FailureKind::Unavailable,
                _ => FailureKind::Other,
            },
            ClientError::Unacknowledged { .. } => FailureKind::Unavailable,
            ClientError::Unreadable { .. } | ClientError::Socket(_) => FailureKind::Other,
        };
        let hint = match &error {
            ClientError::Refused { status: 401, .. } => {
                Some("check the API key (--api-key or CLOACINA_API_KEY)")
            }
            refused if refused.is_untrusted_certificate() => Some(
                "for a private CA or a self-signed server certificate, trust it with --ca-cert PEM (or CLOACINA_CA_CERT)",
            ),
            ClientError::Tls { .. } => Some("does the server serve https:// (--tls-cert)?"),
            ClientError::Refused { body, .. } if body.code == "reactor_paused" => {
                Some("resume it with `cloacinactl graph resume NAME`")
            }
            ClientError::Unacknowledged { .. } => Some(
                "is the graph overloaded? `cloacinactl graph show NAME` shows its events waiting",
            ),
            _ => None,
        };
        Failure {
            kind,
            hint,
            error: anyhow::Error::new(error),
        }
    }
}

/// `--json`: the reply (as this build reads it); otherwise `human`.
fn print<T: Serialize>(value: &T, json: bool, human: impl FnOnce(&T)) {
    if json {
        output::json(value);
    } else {
        human(value);
    }
}

/// An optional text for a column: `-` when absent.
fn or_dash(value: Option<&str>) -> &str {
    value.unwrap_or("-")
}
