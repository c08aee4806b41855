//! PostgreSQL wake-ups between hosts. A writer whose batch left claimable
//! work, ended executions or wrote events sends `NOTIFY cloacina_<tenant>`
//! with what it did; every host listens, claims what fits, wakes its
//! waiters, stops its calls of executions another host ended (a cancel
//! sent there), and wakes the followers of executions that have new
//! events (the delivery socket streams another host's execution live).

use std::sync::Arc;

use cloacina_database::Heard;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::Command;
use crate::completions::Completions;
use crate::model::ExecutionId;

/// The PostgreSQL NOTIFY channel of a tenant's schema.
pub(crate) fn channel(db: &crate::Database) -> String {
    format!("cloacina_{}", db.tenant())
}

/// PostgreSQL refuses payloads of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7_900;

/// New events committed by another host, for followers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteEvents {
    /// Events of this execution.
    Of(ExecutionId),
    /// Notifications may have been missed (a reconnection): every
    /// follower reads again.
    Any,
}

/// What one host's commit tells the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Note {
    pub sender: String,
    /// Claimable work was left.
    pub work: bool,
    pub ended: Vec<ExecutionId>,
    /// Executions the commit wrote events for.
    pub evented: Vec<ExecutionId>,
}

impl Note {
    /// The note as payloads under PostgreSQL's limit: `sender;` then
    /// comma-separated tokens: an ended execution's id, `w` when work was
    /// left, `e:<id>` for an execution with new events. Hosts of the
    /// previous version read `sender;ended,ended` and skip tokens that are
    /// not ids, so both can share a database while a cluster upgrades. The
    /// ids are split over several notifications when they do not fit.
    pub fn payloads(&self) -> Vec<String> {
        let head = format!("{};", self.sender);
        let tokens = self
            .work
            .then(|| "w".to_owned())
            .into_iter()
            .chain(self.ended.iter().map(ToString::to_string))
            .chain(self.evented.iter().map(|id| format!("e:{id}")));
        let mut payloads = Vec::new();
        let mut payload = head.clone();
        for token in tokens {
            if payload.len() + token.len() + 1 > MAX_PAYLOAD {
                payloads.push(std::mem::replace(&mut payload, head.clone()));
            }
            if payload.len() > head.len() {
                payload.push(',');
            }
            payload.push_str(&token);
        }
        payloads.push(payload);
        payloads
    }

    pub fn parse(payload: &str) -> Option<Note> {
        let (sender, tokens) = payload.split_once(';')?;
        let mut note = Note {
            sender: sender.to_owned(),
            work: false,
            ended: Vec::new(),
            evented: Vec::new(),
        };
        for token in tokens.split(',').filter(|t| !t.is_empty()) {
            if token == "w" {
                note.work = true;
            } else if let Some(id) = token.strip_prefix("e:") {
                note.evented.extend(id.parse::<ExecutionId>().ok());
            } else {
                note.ended.extend(token.parse::<ExecutionId>().ok());
            }
        }
        // The previous version notified only when it left work or ended
        // executions, and had no `w`: a note that says nothing else is one
        // of those.
        if note.ended.is_empty() && note.evented.is_empty() {
            note.work = true;
        }
        Some(note)
    }
}

pub(crate) fn spawn_listener(
    url: String,
    channel: String,
    host_id: String,
    writer: mpsc::UnboundedSender<Command>,
    completions: Arc<Completions>,
    remote: broadcast::Sender<RemoteEvents>,
) -> JoinHandle<()> {
    cloacina_database::listen(url, channel, move |heard| {
        match heard {
            Heard::Unreachable => return !writer.is_closed(),
            // Notifications may have been missed: look for work, and let
            // every follower read again.
            Heard::Connected => {
                let _ = remote.send(RemoteEvents::Any);
            }
            Heard::Payload(payload) => {
                let Some(note) = Note::parse(&payload) else {
                    tracing::warn!(%payload, "an unreadable notification from another host");
                    return true;
                };
                if note.sender == host_id {
                    // This host's own commit: it knows already.
                    return true;
                }
                for execution in &note.evented {
                    let _ = remote.send(RemoteEvents::Of(*execution));
                }
                completions.complete(&note.ended);
                // An execution another host ended (a cancel sent there)
                // may still have calls running here: they stop now.
                if !note.ended.is_empty()
                    && writer.send(Command::StopCalls(note.ended.clone())).is_err()
                {
                    return false;
                }
                if !note.work && note.ended.is_empty() {
                    return true;
                }
            }
        }
        writer.send(Command::Wake).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<ExecutionId> {
        (0..n).map(|_| ExecutionId::random()).collect()
    }

    #[test]
    fn a_note_reads_back_as_written() {
        let note = Note {
            sender: "host-a".into(),
            work: true,
            ended: ids(2),
            evented: ids(3),
        };
        let payloads = note.payloads();
        assert_eq!(payloads.len(), 1);
        assert_eq!(Note::parse(&payloads[0]), Some(note));
        // What a host of the previous version sends: work left.
        let legacy = Note::parse("old-host;").expect("readable");
        assert!(legacy.work && legacy.ended.is_empty());
        let ended = ExecutionId::random();
        let legacy = Note::parse(&format!("old-host;{ended}")).expect("readable");
        assert_eq!(legacy.ended, [ended]);
    }

    #[test]
    fn many_ids_are_split_under_the_payload_limit() {
        let note = Note {
            sender: "host-a".into(),
            work: true,
            ended: ids(300),
            evented: ids(500),
        };
        let payloads = note.payloads();
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|p| p.len() < 8_000));
        let (mut ended, mut evented) = (Vec::new(), Vec::new());
        for payload in &payloads {
            let part = Note::parse(payload).expect("readable");
            ended.extend(part.ended);
            evented.extend(part.evented);
        }
        assert_eq!((&ended, &evented), (&note.ended, &note.evented));
        assert!(Note::parse(&payloads[0]).expect("readable").work);
        // An old host reads the ended ids (it skips the rest).
        let old_reader: Vec<ExecutionId> = payloads[0]
            .split_once(';')
            .expect("sender")
            .1
            .split(',')
            .filter_map(|id| id.parse().ok())
            .collect();
        assert_eq!(old_reader[..], note.ended[..old_reader.len()]);
    }
}
