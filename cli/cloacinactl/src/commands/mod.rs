//! One module per command group; each turns parsed arguments into library
//! calls and printed results.

mod host;
mod key;
mod new;
mod pack;
mod package;
mod remote;
mod run;
mod server;
mod trust;

use crate::cli::{Cli, Command};
use crate::failure::Failure;

pub fn run(cli: Cli) -> Result<(), Failure> {
    let json = cli.json;
    match cli.command {
        Command::New(args) => new::run(args, json),
        Command::Key(command) => key::run(command, json),
        Command::Pack(args) => pack::run(args, json),
        Command::Package(command) => package::run(command, json),
        Command::Run(args) => run::run(args, json),
        Command::Trust(command) => trust::run(command, json),
        Command::Server(command) => server::run(command, json),
        Command::Workflow(command) => remote::workflow(command, json),
        Command::Execution(command) => remote::execution(command, json),
        Command::Tenant(command) => remote::tenant(command, json),
        Command::ApiKey(command) => remote::api_key(command, json),
    }
}
