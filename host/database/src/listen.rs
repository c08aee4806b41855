//! PostgreSQL `LISTEN` that survives the connection: what every host uses
//! to hear other hosts (new work, ended executions, registry changes).

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::task::JoinHandle;

/// What a listener hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// Connected, or the connection was lost and is being made again:
    /// notifications sent meanwhile may have been missed.
    Connected,
    /// A notification's payload.
    Payload(String),
    /// The database cannot be reached; trying again shortly. (Answer false
    /// to stop trying: nobody listens any more.)
    Unreachable,
}

const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Listens on `channel` at the PostgreSQL `url`, reconnecting with backoff
/// (each failure logged), and hands `on_heard` what it hears: first
/// [`Heard::Connected`] after every (re)connection and every lost
/// connection, then each payload; [`Heard::Unreachable`] at each failed
/// attempt. The task ends when `on_heard` returns false.
pub fn listen(
    url: String,
    channel: String,
    mut on_heard: impl FnMut(Heard) -> bool + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = FIRST_RETRY;
        loop {
            let connected = async {
                let mut listener = PgListener::connect(&url).await?;
                listener.listen(&channel).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            let mut listener = match connected.await {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!(
                        error = &error as &dyn std::error::Error,
                        %channel,
                        retry_in = ?backoff,
                        "cannot LISTEN; retrying"
                    );
                    if !on_heard(Heard::Unreachable) {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_RETRY);
                    continue;
                }
            };
            backoff = FIRST_RETRY;
            if !on_heard(Heard::Connected) {
                return;
            }
            loop {
                // `try_recv`, not `recv`: a lost connection is reported (and
                // made again at the next call) rather than hidden.
                match listener.try_recv().await {
                    Ok(Some(notification)) => {
                        if !on_heard(Heard::Payload(notification.payload().to_owned())) {
                            return;
                        }
                    }
                    Ok(None) => {
                        tracing::warn!(%channel, "lost the LISTEN connection; reconnecting");
                        if !on_heard(Heard::Connected) {
                            return;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(
                            error = &error as &dyn std::error::Error,
                            %channel,
                            "lost the LISTEN connection; reconnecting"
                        );
                        break;
                    }
                }
            }
        }
    })
}
