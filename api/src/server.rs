//! Lifecycle: bind → ready → (signal) not ready → drain delay → graceful stop with a
//! deadline → flush telemetry → exit. A second signal forces the stop.

use std::net::SocketAddr;
use std::num::NonZero;
use std::time::Duration;

use salvo::conn::tcp::TcpAcceptor;
use salvo::conn::{Acceptor, TcpListener};
use salvo::prelude::*;
use salvo::server::ServerHandle;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::connections::Connections;
use crate::readiness::Readiness;
use crate::{listener, routes, telemetry};

/// Largest request head (request line + headers) accepted; hyper answers 431 beyond.
const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// Bound on accepting the backlog and closing the public socket.
const LISTENER_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Bound on flushing telemetry at exit, so an unreachable collector cannot hang it.
const TELEMETRY_FLUSH_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on stopping leftover tasks (a stalled flush) once serving is over.
const RUNTIME_STOP_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot listen on {addr} ({key}): {source}")]
    Bind {
        key: &'static str,
        addr: SocketAddr,
        source: Box<salvo::Error>,
    },
    #[error("{0}")]
    Telemetry(telemetry::TelemetryError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("shutdown forced by a second signal: {cut} connection(s) cut")]
    Forced { cut: usize },
    #[error("shutdown deadline ({seconds} s) passed: {cut} connection(s) cut")]
    DeadlineMissed { seconds: u64, cut: usize },
}

/// Runs the service until a shutdown signal; one worker thread per CPU this process
/// may use (sched affinity and cgroup quota, as `available_parallelism` reports).
/// With a single CPU, the single-threaded scheduler: no work-stealing machinery; p99
/// 0.15 to 0.2 ms lower at saturation in two A/B runs (docs/performance.md).
pub fn run(config: Config) -> Result<(), ServeError> {
    let workers = std::thread::available_parallelism().map_or(1, NonZero::get);
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(workers);
        builder
    };
    let runtime = builder.enable_all().build().map_err(ServeError::Runtime)?;
    let result = runtime.block_on(serve(config, workers));
    runtime.shutdown_timeout(RUNTIME_STOP_TIMEOUT);
    result
}

async fn bind(key: &'static str, addr: SocketAddr) -> Result<TcpAcceptor, ServeError> {
    TcpListener::new(addr)
        .try_bind()
        .await
        .map_err(|source| ServeError::Bind {
            key,
            addr,
            source: Box::new(source),
        })
}

fn server<A: Acceptor + Send>(acceptor: A, connections: &Connections) -> Server<A> {
    let mut server = Server::new(acceptor)
        .fuse_policy(connections.clone())
        .max_connections(connections.max());
    server.http1_mut().max_buf_size(MAX_REQUEST_HEAD);
    server
}

/// How the graceful stop ended.
enum Stop {
    Drained,
    Deadline,
    Signal,
}

async fn serve(config: Config, workers: usize) -> Result<(), ServeError> {
    let telemetry = telemetry::init(&config).map_err(ServeError::Telemetry)?;
    let mut signals = Signals::new()?;
    let readiness = Readiness::new();

    let connections = Connections::new(&config);
    let (acceptor, closer) = listener::closable(bind("DATAPRESS_LISTEN", config.listen).await?);
    let public = server(acceptor, &connections);
    let public_handle = public.handle();
    let metrics = server(
        bind("DATAPRESS_METRICS_LISTEN", config.metrics_listen).await?,
        &connections,
    );
    let metrics_handle = metrics.handle();
    let mut tasks = [
        tokio::spawn(public.serve(routes::service(&config, readiness.clone(), &telemetry))),
        tokio::spawn(metrics.serve(crate::metrics::service(telemetry.registry()))),
    ];

    readiness.set_ready();
    tracing::info!(
        env = %config.env,
        version = routes::VERSION,
        revision = routes::REVISION,
        listen = %config.listen,
        metrics_listen = %config.metrics_listen,
        traces = config.traces_enabled(),
        workers,
        "ready"
    );

    signals.recv().await;
    readiness.set_draining();
    tracing::info!(
        drain_seconds = config.drain_seconds,
        "shutdown: not ready, draining"
    );
    let handles = [public_handle, metrics_handle];
    let drain_over = tokio::select! {
        () = tokio::time::sleep(Duration::from_secs(config.drain_seconds)) => true,
        () = signals.recv() => false,
    };
    let outcome = if drain_over {
        tracing::info!(
            timeout_seconds = config.shutdown_timeout_seconds,
            "shutdown: stopping listeners, finishing in-flight requests"
        );
        if !closer.close(LISTENER_CLOSE_TIMEOUT).await {
            tracing::warn!("shutdown: listener did not close in time");
        }
        // The deadline is kept here, not by salvo, to know what it cuts.
        stop(&handles, |h| h.stop_graceful(None));
        tokio::select! {
            done = wait_servers(&mut tasks, Duration::from_secs(config.shutdown_timeout_seconds)) => {
                if done { Stop::Drained } else { Stop::Deadline }
            }
            () = signals.recv() => Stop::Signal,
        }
    } else {
        Stop::Signal
    };
    let cut = connections.open();
    match outcome {
        Stop::Drained => {}
        Stop::Deadline => tracing::warn!(
            timeout_seconds = config.shutdown_timeout_seconds,
            connections_cut = cut,
            "shutdown: deadline passed, cutting the connections still open"
        ),
        Stop::Signal => tracing::warn!(
            connections_cut = cut,
            "shutdown: second signal, cutting the connections still open"
        ),
    }
    if !matches!(outcome, Stop::Drained) {
        stop(&handles, ServerHandle::stop_forceful);
        wait_servers(&mut tasks, LISTENER_CLOSE_TIMEOUT).await;
    }

    let flushed = tokio::time::timeout(
        TELEMETRY_FLUSH_TIMEOUT,
        tokio::task::spawn_blocking(move || telemetry.shutdown()),
    )
    .await;
    if flushed.is_err() {
        tracing::warn!("shutdown: telemetry flush timed out");
    }
    match outcome {
        Stop::Drained => {
            tracing::info!("shutdown: complete");
            Ok(())
        }
        Stop::Deadline => Err(ServeError::DeadlineMissed {
            seconds: config.shutdown_timeout_seconds,
            cut,
        }),
        Stop::Signal => Err(ServeError::Forced { cut }),
    }
}

/// Waits for the servers to return, at most `limit`; `false` if one still runs.
async fn wait_servers(tasks: &mut [JoinHandle<()>], limit: Duration) -> bool {
    let all = async {
        for task in tasks.iter_mut() {
            // A handle that already returned must not be polled again.
            if !task.is_finished() {
                let _ = task.await;
            }
        }
    };
    tokio::time::timeout(limit, all).await.is_ok()
}

fn stop(handles: &[ServerHandle], f: impl Fn(&ServerHandle)) {
    handles.iter().for_each(f);
}

/// SIGTERM (Kubernetes, Docker) and SIGINT (Ctrl-C) both start the shutdown.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self, ServeError> {
        Ok(Self {
            term: signal(SignalKind::terminate()).map_err(ServeError::Signals)?,
            int: signal(SignalKind::interrupt()).map_err(ServeError::Signals)?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
