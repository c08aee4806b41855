//! `api-key create|list|revoke` over HTTP (`create --home` is a host
//! command: `host::keys`).

use cloacina_wire::keys::CreateKeyRequest;

use super::{connect, print};
use crate::cli::ApiKeyCommand;
use crate::failure::{Classify as _, Failure, FailureKind};
use crate::output::out;

pub fn run(command: ApiKeyCommand, json: bool) -> Result<(), Failure> {
    match command {
        ApiKeyCommand::Create {
            name,
            role,
            for_tenant,
            god,
            home,
            database_url,
            client,
        } => {
            if home.is_some() || database_url.is_some() {
                let host = crate::cli::HostArgs { home, database_url };
                return crate::commands::host::keys::create_offline(
                    &host,
                    &name,
                    &role,
                    for_tenant.as_deref(),
                    god,
                    json,
                );
            }
            if god {
                return Err(anyhow::anyhow!(
                    "--god keys are made in the host's database: add --home DIR or --database-url URL"
                ))
                .classify(FailureKind::Usage);
            }
            let created = connect(&client)?.create_key(
                &CreateKeyRequest {
                    name,
                    role: Some(role),
                },
                for_tenant.as_deref(),
            )?;
            print(&created, json, |v| {
                out!("{}", v.key);
                eprintln!(
                    "created key {} ({}, {}) — the line above is its only showing",
                    v.id,
                    v.permissions,
                    v.tenant_id.as_deref().unwrap_or("all tenants")
                );
            });
        }
        ApiKeyCommand::List(client) => {
            let listed = connect(&client)?.keys()?;
            print(&listed, json, |v| {
                out!(
                    "{:<36}  {:<20} {:<6} {:<16} STATE",
                    "ID",
                    "NAME",
                    "ROLE",
                    "TENANT"
                );
                for key in &v.items {
                    out!(
                        "{:<36}  {:<20} {:<6} {:<16} {}",
                        key.id,
                        key.name,
                        key.permissions,
                        key.tenant_id.as_deref().unwrap_or("(all)"),
                        if key.revoked { "revoked" } else { "active" }
                    );
                }
            });
        }
        ApiKeyCommand::Revoke { id, client } => {
            let revoked = connect(&client)?.revoke_key(&id)?;
            print(&revoked, json, |_| out!("revoked key {id}"));
        }
    }
    Ok(())
}
