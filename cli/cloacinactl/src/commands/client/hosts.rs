//! `host list`: the hosts serving a tenant on a server.

use cloacina_wire::hosts::HostInfo;

use super::{connect, or_dash, print};
use crate::cli::HostCommand;
use crate::failure::Failure;
use crate::output::out;

/// Characters of a host id the table shows: enough to tell a tenant's
/// hosts apart (`--json` has the whole id).
const SHORT_ID: usize = 8;

pub fn run(command: HostCommand, json: bool) -> Result<(), Failure> {
    match command {
        HostCommand::List(client) => {
            let listed = connect(&client)?.hosts()?;
            print(&listed, json, |v| {
                out!(
                    "  {:<8}  {:<21} {:<10} {:<30} {:<10} {:>5}  GRAPHS",
                    "ID",
                    "ADDRESS",
                    "VERSION",
                    "STARTED",
                    "HEARTBEAT",
                    "TASKS"
                );
                for host in &v.items {
                    out!("{}", row(host));
                }
            });
        }
    }
    Ok(())
}

/// One host's line: `*` first for the server that answered.
fn row(host: &HostInfo) -> String {
    let graphs = if host.owned_graphs.is_empty() {
        "-".to_owned()
    } else {
        host.owned_graphs.join(", ")
    };
    format!(
        "{} {:<8}  {:<21} {:<10} {:<30} {:<10} {:>5}  {graphs}",
        if host.this_host { "*" } else { " " },
        host.id.chars().take(SHORT_ID).collect::<String>(),
        or_dash(host.address.as_deref()),
        or_dash(host.version.as_deref()),
        host.started_at,
        age(host.heartbeat_age_ms),
        host.running_tasks,
    )
}

/// `1234` (ms) -> `1.2s ago`; past a minute in whole minutes, hours or
/// days, which is all a host silent that long needs said of it.
fn age(ms: i64) -> String {
    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    match ms.max(0) {
        // Tenths cut, not rounded: 59,990 ms is not yet "60.0s".
        ms if ms < MINUTE => format!("{}.{}s ago", ms / 1_000, ms % 1_000 / 100),
        ms if ms < HOUR => format!("{}m ago", ms / MINUTE),
        ms if ms < DAY => format!("{}h ago", ms / HOUR),
        ms => format!("{}d ago", ms / DAY),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;
    use cloacina_wire::hosts::HostInfo;

    use super::{age, row};
    use crate::cli::{Cli, Command, HostCommand};

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age(1_234), "1.2s ago");
        assert_eq!(age(59_990), "59.9s ago");
        assert_eq!(age(-5), "0.0s ago");
        assert_eq!(age(125_000), "2m ago");
        assert_eq!(age(3 * 3_600_000), "3h ago");
        assert_eq!(age(49 * 3_600_000), "2d ago");
    }

    #[test]
    fn a_row_marks_this_host_and_shortens_its_id() {
        let mut host = HostInfo {
            id: "3f2a9c1e-0000-4000-8000-000000000000".to_owned(),
            address: Some("127.0.0.1:8080".to_owned()),
            version: Some("0.1.0".to_owned()),
            started_at: "2025-01-01T10:00:00+00:00".to_owned(),
            last_heartbeat: "2025-01-01T10:05:00+00:00".to_owned(),
            heartbeat_age_ms: 1_200,
            running_tasks: 3,
            owned_graphs: vec!["climate".to_owned(), "counter".to_owned()],
            this_host: true,
        };
        let line = row(&host);
        assert!(line.starts_with("* 3f2a9c1e  127.0.0.1:8080"), "{line}");
        assert!(!line.contains("-0000-"), "{line}");
        assert!(line.contains("1.2s ago"), "{line}");
        assert!(line.ends_with("    3  climate, counter"), "{line}");

        host.this_host = false;
        host.address = None;
        host.owned_graphs.clear();
        let line = row(&host);
        assert!(line.starts_with("  3f2a9c1e  -"), "{line}");
        assert!(line.ends_with("  -"), "{line}");
    }

    #[test]
    fn host_list_parses() {
        let cli =
            Cli::try_parse_from(["cloacinactl", "host", "list", "--tenant", "acme", "--json"])
                .expect("parses");
        assert!(cli.json);
        let Command::Host(HostCommand::List(client)) = cli.command else {
            panic!("host list");
        };
        assert_eq!(client.tenant.as_deref(), Some("acme"));
    }
}
