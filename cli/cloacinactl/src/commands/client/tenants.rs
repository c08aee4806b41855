//! `tenant create|list|remove` (god mode).

use cloacina_wire::tenants::CreateTenantRequest;

use super::{connect, print};
use crate::cli::TenantCommand;
use crate::failure::Failure;
use crate::output::out;

pub fn run(command: TenantCommand, json: bool) -> Result<(), Failure> {
    match command {
        TenantCommand::Create {
            name,
            password,
            client,
        } => {
            let created = connect(&client)?.create_tenant(&CreateTenantRequest {
                name: Some(name),
                schema_name: None,
                description: None,
                username: None,
                password,
            })?;
            print(&created, json, |v| out!("created tenant {}", v.name));
        }
        TenantCommand::List(client) => {
            let listed = connect(&client)?.tenants()?;
            print(&listed, json, |v| {
                for item in &v.items {
                    out!("{}", item.name);
                }
            });
        }
        TenantCommand::Remove { name, client } => {
            let removed = connect(&client)?.remove_tenant(&name)?;
            print(&removed, json, |v| {
                out!("removed tenant {name} ({} keys revoked)", v.revoked_keys)
            });
        }
    }
    Ok(())
}
