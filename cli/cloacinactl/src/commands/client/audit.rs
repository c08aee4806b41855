//! `audit`: a server's audit log, newest first.

use cloacina_wire::audit::AuditEntry;

use super::{connect, or_dash, print};
use crate::cli::ClientArgs;
use crate::failure::Failure;
use crate::output::out;

pub fn run(client: &ClientArgs, limit: u32, offset: u32, json: bool) -> Result<(), Failure> {
    let listed = connect(client)?.audit(limit, offset)?;
    print(&listed, json, |log| {
        out!(
            "{:<19}  {:<16} {:<15} {:<15} {:<10} TARGET",
            "AT (UTC)",
            "KEY",
            "FROM",
            "ACTION",
            "TENANT"
        );
        for entry in &log.items {
            out!("{}", row(entry));
        }
        out!(
            "{} of {} entries (newest first)",
            log.items.len(),
            log.total
        );
    });
    Ok(())
}

/// One entry's line: the time to the second (the server writes UTC), the
/// key by its name.
fn row(entry: &AuditEntry) -> String {
    let at = entry.at.get(..19).unwrap_or(&entry.at).replace('T', " ");
    format!(
        "{at:<19}  {:<16} {:<15} {:<15} {:<10} {}",
        or_dash(entry.actor_name.as_deref()),
        or_dash(entry.address.as_deref()),
        entry.action,
        or_dash(entry.tenant.as_deref()),
        entry.target
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::row;
    use crate::cli::{Cli, Command};

    #[test]
    fn audit_parses_with_its_page() {
        let cli = Cli::try_parse_from(["cloacinactl", "--json", "audit", "--limit", "5"])
            .expect("parses");
        assert!(cli.json);
        let Command::Audit { limit, offset, .. } = cli.command else {
            panic!("audit");
        };
        assert_eq!((limit, offset), (5, 0));
    }

    #[test]
    fn a_row_names_who_what_and_where() {
        let entry = cloacina_wire::audit::AuditEntry {
            id: "e".to_owned(),
            at: "2026-12-01T20:00:00.123+00:00".to_owned(),
            actor_key_id: Some("k".to_owned()),
            actor_name: Some("ops".to_owned()),
            address: Some("10.0.0.7".to_owned()),
            action: "key.revoke".to_owned(),
            tenant: None,
            target: "1f2e".to_owned(),
            detail: None,
        };
        let line = row(&entry);
        assert!(line.starts_with("2026-12-01 20:00:00  ops"), "{line}");
        assert!(line.contains("ops"), "{line}");
        assert!(line.contains("10.0.0.7"), "{line}");
        assert!(line.contains("key.revoke"), "{line}");
        assert!(line.ends_with(" 1f2e"), "{line}");
    }
}
