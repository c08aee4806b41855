//! `cloacinactl server start`: the server in the foreground.

use crate::cli::ServerCommand;
use crate::failure::{Classify as _, Failure, FailureKind};

pub fn run(command: ServerCommand, _json: bool) -> Result<(), Failure> {
    match command {
        ServerCommand::Start(args) => cloacina_server::run(&args).classify(FailureKind::Other),
    }
}
