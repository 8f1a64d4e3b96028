//! A TCP acceptor that can be closed before the server's graceful stop: it accepts
//! whatever already waits in the kernel backlog, then closes the socket, so a client
//! is either served or refused at connect time, never reset after sending a request.

use std::time::Duration;

use salvo::conn::tcp::{TcpAcceptor, TcpCoupler};
use salvo::conn::{Accepted, Acceptor, Holding, StraightStream};
use salvo::fuse::ArcFusePolicy;
use tokio::net::TcpStream;
use tokio::sync::watch;

pub struct ClosableAcceptor {
    inner: Option<TcpAcceptor>,
    holdings: Vec<Holding>,
    close_requested: watch::Receiver<bool>,
    closing: bool,
    closed: watch::Sender<bool>,
}

/// Asks the acceptor to close and waits until it has.
pub struct Closer {
    request: watch::Sender<bool>,
    closed: watch::Receiver<bool>,
}

impl Closer {
    /// Returns `false` if the acceptor did not confirm within `limit`.
    pub async fn close(mut self, limit: Duration) -> bool {
        let _ = self.request.send(true);
        tokio::time::timeout(limit, self.closed.wait_for(|closed| *closed))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

pub fn closable(inner: TcpAcceptor) -> (ClosableAcceptor, Closer) {
    let (request, close_requested) = watch::channel(false);
    let (closed, closed_rx) = watch::channel(false);
    let holdings = inner.holdings().to_vec();
    (
        ClosableAcceptor {
            inner: Some(inner),
            holdings,
            close_requested,
            closing: false,
            closed,
        },
        Closer {
            request,
            closed: closed_rx,
        },
    )
}

type TcpAccepted = Accepted<TcpCoupler<StraightStream<TcpStream>>, StraightStream<TcpStream>>;

impl Acceptor for ClosableAcceptor {
    type Coupler = TcpCoupler<StraightStream<TcpStream>>;
    type Stream = StraightStream<TcpStream>;

    fn holdings(&self) -> &[Holding] {
        &self.holdings
    }

    async fn accept(&mut self, fuse_policy: Option<ArcFusePolicy>) -> std::io::Result<TcpAccepted> {
        loop {
            let Some(inner) = self.inner.as_mut() else {
                // Closed: the server's own stop command ends its accept loop.
                return std::future::pending().await;
            };
            if self.closing {
                // Drain the backlog: a zero timeout still polls the accept once.
                match tokio::time::timeout(Duration::ZERO, inner.accept(fuse_policy.clone())).await
                {
                    Ok(accepted) => return accepted,
                    Err(_) => {
                        self.inner = None;
                        let _ = self.closed.send(true);
                        continue;
                    }
                }
            }
            tokio::select! {
                accepted = inner.accept(fuse_policy.clone()) => return accepted,
                // A dropped closer also means shutdown: close rather than spin.
                changed = self.close_requested.changed() => {
                    self.closing = changed.is_err() || *self.close_requested.borrow();
                }
            }
        }
    }
}
