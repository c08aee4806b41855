//! The commands, grouped by who runs them: `author` (scaffold, keys, pack,
//! verify, inspect, run locally), `host` (server, trust, keys and uploads
//! into a host's database), `client` (the HTTP commands on a running
//! server). Each turns parsed arguments into library calls and printed
//! results.

mod author;
mod client;
mod host;

use crate::cli::{Cli, Command, PackageCommand};
use crate::failure::Failure;

pub fn run(cli: Cli) -> Result<(), Failure> {
    let json = cli.json;
    match cli.command {
        Command::New(args) => author::new::run(args, json),
        Command::Key(command) => author::key::run(command, json),
        Command::Pack(args) => author::pack::run(args, json),
        Command::Package(command) => package(command, json),
        Command::Run(args) => author::run::run(args, json),
        Command::Trust(command) => host::trust::run(command, json),
        Command::Server(command) => host::server::run(command, json),
        Command::Workflow(command) => client::workflows::run(command, json),
        Command::Execution(command) => client::executions::run(command, json),
        Command::Graph(command) => client::graphs::run(command, json),
        Command::Tenant(command) => client::tenants::run(command, json),
        Command::Host(command) => client::hosts::run(command, json),
        Command::ApiKey(command) => client::keys::run(command, json),
        Command::Audit {
            limit,
            offset,
            client,
        } => client::audit::run(&client, limit, offset, json),
    }
}

/// `package`: checking a file is the author's, uploading it the host's
/// (`--home`) or a server's (`--server`), listing and deleting a server's.
fn package(command: PackageCommand, json: bool) -> Result<(), Failure> {
    match command {
        PackageCommand::Verify(args) => author::package::verify(args, json),
        PackageCommand::Inspect(args) => author::package::inspect(args, json),
        PackageCommand::Upload(args) if args.server.is_some() => {
            client::packages::upload(args, json)
        }
        PackageCommand::Upload(args) => host::upload::upload(args, json),
        PackageCommand::List(args) => client::packages::list(args, json),
        PackageCommand::Delete {
            name,
            version,
            cancel,
            client,
        } => client::packages::delete(&name, &version, cancel, client, json),
    }
}
