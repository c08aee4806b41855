//! What hosts running one tenant's graphs tell each other on PostgreSQL
//! (`NOTIFY cloacina_graphs_<tenant>`): appends, released leases, commands
//! for the owner, and replies. The database holds the truth; a lost
//! notification only delays (a reconnected listener wakes everything).

use sqlx::AnyConnection;

/// The tenant's graph channel.
pub(crate) fn channel(db: &cloacina_database::Database) -> String {
    format!("cloacina_graphs_{}", db.tenant())
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Note {
    /// `sender` appended events to `graph`'s inbox.
    Events { sender: String, graph: String },
    /// `sender` gave `graph`'s lease up (it is stopping it).
    Released { sender: String, graph: String },
    /// `sender` is stopping: do not count it when spreading graphs.
    Leaving { sender: String },
    /// A command row for `graph` waits for its owner.
    Command { graph: String },
    /// The command row `id` has its reply.
    Reply { id: String },
}

impl Note {
    pub fn payload(&self) -> String {
        match self {
            Note::Events { sender, graph } => format!("events {sender} {graph}"),
            Note::Released { sender, graph } => format!("released {sender} {graph}"),
            Note::Leaving { sender } => format!("leaving {sender}"),
            Note::Command { graph } => format!("command {graph}"),
            Note::Reply { id } => format!("reply {id}"),
        }
    }

    pub fn parse(payload: &str) -> Option<Note> {
        let mut words = payload.split(' ');
        let note = match (words.next()?, words.next()?, words.next()) {
            ("events", sender, Some(graph)) => Note::Events {
                sender: sender.to_owned(),
                graph: graph.to_owned(),
            },
            ("released", sender, Some(graph)) => Note::Released {
                sender: sender.to_owned(),
                graph: graph.to_owned(),
            },
            ("leaving", sender, None) => Note::Leaving {
                sender: sender.to_owned(),
            },
            ("command", graph, None) => Note::Command {
                graph: graph.to_owned(),
            },
            ("reply", id, None) => Note::Reply { id: id.to_owned() },
            _ => return None,
        };
        words.next().is_none().then_some(note)
    }
}

/// Sends `note` on `channel`, delivered when `connection`'s transaction
/// commits (at once outside one).
pub(crate) async fn send(
    connection: &mut AnyConnection,
    channel: &str,
    note: &Note,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(note.payload())
        .execute(connection)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Note;

    #[test]
    fn notes_read_back_as_written() {
        for note in [
            Note::Events {
                sender: "h1".into(),
                graph: "g".into(),
            },
            Note::Released {
                sender: "h2".into(),
                graph: "prices".into(),
            },
            Note::Leaving {
                sender: "h3".into(),
            },
            Note::Command { graph: "g".into() },
            Note::Reply { id: "abc".into() },
        ] {
            assert_eq!(Note::parse(&note.payload()), Some(note));
        }
        assert_eq!(Note::parse("events h1"), None);
        assert_eq!(Note::parse("reply a b"), None);
        assert_eq!(Note::parse("nonsense"), None);
    }
}
