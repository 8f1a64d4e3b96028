//! The connection policy of both listeners: how many connections each accepts at most,
//! the timeouts every accepted connection gets, and a count of the connections still
//! open, which the shutdown reports when it has to cut them.
//!
//! At the limit a listener stops accepting (new clients wait in the kernel backlog) until
//! a connection closes; the timeouts make sure one does: a client that does not send its
//! headers in time, does not read its answers (write stall) or goes silent is cut.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use salvo::async_trait;
use salvo::conn::ConnCtrl;
use salvo::fuse::{ArcConnObserver, ConnObserver, FuseAction, FuseConfig, FuseInfo, FusePolicy};

use crate::config::Config;

/// Cheap to clone: clones share the count.
#[derive(Clone)]
pub struct Connections {
    timeouts: FuseConfig,
    max: usize,
    open: Arc<AtomicUsize>,
}

impl Connections {
    pub fn new(config: &Config) -> Self {
        let timeouts = FuseConfig::default()
            .with_http1_header_timeout(Duration::from_secs(config.header_read_timeout_seconds))
            .with_write_stall_timeout(Duration::from_secs(config.write_timeout_seconds))
            .with_connection_idle_timeout(Duration::from_secs(config.idle_timeout_seconds));
        Self {
            timeouts,
            max: config.max_connections,
            open: Arc::default(),
        }
    }

    /// Connections a listener holds at most.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections accepted and not yet closed, on every listener using this policy.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

#[async_trait]
impl FusePolicy for Connections {
    async fn decide(&self, _info: &FuseInfo) -> FuseAction {
        FuseAction::Accept(self.timeouts)
    }

    /// The observer lives as long as the connection's transport: it is the count's guard.
    fn observe(&self, _info: &FuseInfo, _ctrl: &ConnCtrl) -> Option<ArcConnObserver> {
        self.open.fetch_add(1, Ordering::AcqRel);
        Some(Arc::new(Open(self.open.clone())))
    }
}

struct Open(Arc<AtomicUsize>);

impl ConnObserver for Open {}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_until_the_observer_is_dropped() {
        let connections = Connections::new(&Config::default());
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
        let info = FuseInfo {
            trans_proto: salvo::fuse::TransProto::Tcp,
            remote_addr: addr.into(),
            local_addr: addr.into(),
        };
        let first = connections.observe(&info, &ConnCtrl::new());
        let second = connections.clone().observe(&info, &ConnCtrl::new());
        assert_eq!(connections.open(), 2);
        drop(first);
        assert_eq!(connections.open(), 1);
        drop(second);
        assert_eq!(connections.open(), 0);
    }
}
