//! Lingering close (as nginx and Apache do it): a connection that ends
//! while the client is still sending, because its request was answered
//! before its body was read (a 413 from the `Content-Length`, a refusal of
//! the caller), is not closed under the client's feet. Closing a socket
//! with unread data makes the kernel send a reset, and a reset can destroy
//! the answer in the client's receive buffer before the client reads it:
//! the client then sees "connection reset" instead of the 413.
//!
//! So shutting down first sends our FIN after the answer, then reads and
//! discards what the client still sends until it closes its side, it
//! stays silent for [`IDLE`], [`AT_MOST`] has passed, or it has sent
//! [`AT_MOST_BYTES`], whichever is first. A well-behaved client closes as
//! soon as it has read the answer; one streaming a huge body is cut off
//! early (its upload refused is the point), not drained to its end.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep, sleep};

/// A client silent this long after our FIN is not sending a body any more.
const IDLE: Duration = Duration::from_secs(1);
/// The longest a closing connection is drained, however fast it sends.
const AT_MOST: Duration = Duration::from_secs(5);
/// The most a closing connection reads: more than any JSON body over its
/// limit, far less than an oversized upload.
const AT_MOST_BYTES: usize = 16 << 20;

pub(super) struct Lingering<T> {
    inner: T,
    closing: Closing,
}

enum Closing {
    Open,
    Draining {
        idle: Pin<Box<Sleep>>,
        deadline: Pin<Box<Sleep>>,
        drained: usize,
    },
    Closed,
}

impl<T> Lingering<T> {
    pub(super) fn new(inner: T) -> Self {
        Lingering {
            inner,
            closing: Closing::Open,
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Lingering<T> {
    /// Reads and discards until the client closes, falls silent, or the
    /// deadline passes.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Closing::Draining {
            idle,
            deadline,
            drained,
        } = &mut self.closing
        else {
            return Poll::Ready(());
        };
        let mut discard = [0_u8; 16 * 1024];
        loop {
            let mut buffer = ReadBuf::new(&mut discard);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buffer) {
                Poll::Ready(Ok(())) if !buffer.filled().is_empty() => {
                    *drained += buffer.filled().len();
                    if *drained >= AT_MOST_BYTES {
                        return Poll::Ready(());
                    }
                    idle.as_mut().reset(Instant::now() + IDLE);
                }
                // End of stream or an error: nothing more will come.
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => break,
            }
        }
        if idle.as_mut().poll(cx).is_ready() || deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Lingering<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            match this.closing {
                Closing::Open => {
                    ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
                    this.closing = Closing::Draining {
                        idle: Box::pin(sleep(IDLE)),
                        deadline: Box::pin(sleep(AT_MOST)),
                        drained: 0,
                    };
                }
                Closing::Draining { .. } => {
                    ready!(this.poll_drain(cx));
                    this.closing = Closing::Closed;
                }
                Closing::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, duplex};

    #[tokio::test]
    async fn shutdown_drains_what_the_client_still_sends_then_ends_at_its_close() {
        let (client, server) = duplex(1024);
        let mut server = Lingering::new(server);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        // The client sends 64 KiB, more than the pipe holds, after the
        // server has already decided to close.
        let sender = tokio::spawn(async move {
            client_write.write_all(&[7_u8; 64 * 1024]).await?;
            client_write.shutdown().await?;
            std::io::Result::Ok(())
        });
        server
            .write_all(b"HTTP/1.1 413\r\n\r\n")
            .await
            .expect("answers");
        server.shutdown().await.expect("closes");
        sender
            .await
            .expect("joins")
            .expect("the client sends it all");
        let mut answer = Vec::new();
        client_read.read_to_end(&mut answer).await.expect("reads");
        assert_eq!(answer, b"HTTP/1.1 413\r\n\r\n");
    }

    #[tokio::test]
    async fn a_client_streaming_a_huge_body_is_cut_off_early() {
        let (client, server) = duplex(64 * 1024);
        let mut server = Lingering::new(server);
        let (_client_read, mut client_write) = tokio::io::split(client);
        let sender = tokio::spawn(async move {
            let chunk = vec![1_u8; 1 << 20];
            for _ in 0..((4 * AT_MOST_BYTES) >> 20) {
                if client_write.write_all(&chunk).await.is_err() {
                    return false;
                }
            }
            true
        });
        server.shutdown().await.expect("closes");
        assert!(!sender.is_finished(), "the server read the whole body");
        drop(server);
        assert!(!sender.await.expect("joins"), "the rest is refused");
    }

    #[tokio::test]
    async fn a_silent_client_does_not_hold_the_close() {
        let (_client, server) = duplex(1024);
        let mut server = Lingering::new(server);
        let started = Instant::now();
        server.shutdown().await.expect("closes");
        let waited = started.elapsed();
        assert!(waited >= IDLE && waited < AT_MOST, "waited {waited:?}");
    }
}
