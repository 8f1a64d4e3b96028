//! Per-request middleware: request id (taken or generated, echoed), a span carrying it,
//! and one access-log line. Probe paths log at debug level only, keeping them cheap.
//!
//! In JSON mode the access line is serialized here, straight into the log sink, in the
//! shape `tracing-subscriber` gives every other event (request fields flattened, the
//! request span under `span`): going through the generic formatter cost more than the
//! rest of the request (docs/performance.md). Pretty mode logs it as a `tracing` event.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::{SecondsFormat, Utc};
use salvo::http::header::{HeaderName, HeaderValue};
use salvo::prelude::*;
use serde::Serialize;
use tracing::{Instrument, Level};

use crate::config::LogFormat;
use crate::log_context::{RequestFields, WithRequest};
use crate::log_sink;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Paths polled by orchestrators many times a minute.
pub fn is_probe(path: &str) -> bool {
    matches!(path, "/health" | "/ready")
}

pub struct AccessLog {
    prefix: u64,
    counter: AtomicU64,
    format: LogFormat,
}

impl AccessLog {
    pub fn new(format: LogFormat) -> Self {
        // A per-process random prefix keeps generated ids unique across replicas.
        let prefix = RandomState::new().build_hasher().finish();
        Self {
            prefix,
            counter: AtomicU64::new(0),
            format,
        }
    }

    fn next_id(&self) -> HeaderValue {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; 32];
        hex_into(&mut buf[..16], self.prefix);
        hex_into(&mut buf[16..], n);
        HeaderValue::from_bytes(&buf).unwrap_or(HeaderValue::from_static("invalid"))
    }

    fn request_id(&self, req: &Request) -> HeaderValue {
        match req.headers().get(&X_REQUEST_ID) {
            Some(id) if is_valid_id(id.as_bytes()) => id.clone(),
            _ => self.next_id(),
        }
    }
}

fn hex_into(out: &mut [u8], value: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = HEX[((value >> (60 - 4 * i)) & 0xf) as usize];
    }
}

/// Client ids are echoed and logged, so only short, plain tokens are accepted.
fn is_valid_id(id: &[u8]) -> bool {
    (1..=128).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(b))
}

/// The route template of logs and metrics, `-` in logs when none matched; salvo leaves
/// the matched path empty for `/`, so the root is told apart by its status.
pub struct Route<'a>(&'a str, bool);

impl<'a> Route<'a> {
    pub fn of(req: &'a Request, status: StatusCode) -> Self {
        let matched = req.matched_path();
        let root = req.uri().path() == "/"
            && status != StatusCode::NOT_FOUND
            && status != StatusCode::METHOD_NOT_ALLOWED;
        Route(matched, !matched.is_empty() || root)
    }

    /// `/health`, `/`…, or `None` when no route matched.
    pub fn template(&self) -> Option<String> {
        self.1.then(|| self.to_string())
    }
}

impl std::fmt::Display for Route<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Route(_, false) => f.write_str("-"),
            Route(path, true) => write!(f, "/{path}"),
        }
    }
}

impl Serialize for Route<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One access line, as `tracing-subscriber`'s JSON formatter would print the event.
#[derive(Serialize)]
struct Line<'a> {
    timestamp: String,
    level: &'static str,
    message: &'static str,
    method: &'a str,
    path: &'a str,
    route: Route<'a>,
    status: u16,
    latency_ms: f64,
    span: RequestFields<'a>,
    target: &'static str,
}

impl Line<'_> {
    fn write(&self) {
        let mut buf = Vec::with_capacity(384);
        if serde_json::to_writer(&mut buf, self).is_ok() {
            buf.push(b'\n');
            log_sink::write_lines(&buf);
        }
    }
}

#[async_trait]
impl Handler for AccessLog {
    async fn handle(
        &self,
        req: &mut Request,
        depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        let started = Instant::now();
        let request_id = self.request_id(req);
        let probe = is_probe(req.uri().path());
        let id = request_id.to_str().unwrap_or("-");
        let level = if probe { Level::DEBUG } else { Level::INFO };
        let logged = if probe {
            tracing::enabled!(Level::DEBUG)
        } else {
            tracing::enabled!(Level::INFO)
        };
        let trace_id = crate::telemetry::current_trace_id().map(|t| t.to_string());
        let fields = RequestFields::new(id, trace_id.as_deref());
        // tracing levels are static per call site, hence one span per level.
        let span = match (self.format, probe) {
            (LogFormat::Json, _) => None,
            (LogFormat::Pretty, true) => Some(tracing::debug_span!(
                "request",
                request_id = id,
                trace_id = tracing::field::Empty
            )),
            (LogFormat::Pretty, false) => Some(tracing::info_span!(
                "request",
                request_id = id,
                trace_id = tracing::field::Empty
            )),
        };
        match &span {
            None => {
                WithRequest::new(fields.clone().into_owned(), ctrl.call_next(req, depot, res))
                    .await;
            }
            Some(span) => {
                if let Some(trace_id) = &trace_id {
                    span.record("trace_id", trace_id.as_str());
                }
                ctrl.call_next(req, depot, res)
                    .instrument(span.clone())
                    .await;
            }
        }

        if logged {
            let status = res.status_code.unwrap_or(StatusCode::OK);
            let route = Route::of(req, status);
            let status = status.as_u16();
            // Whole microseconds keep the JSON short (0.321, not 0.32165299999999997).
            let latency_ms = started.elapsed().as_micros() as f64 / 1000.0;
            let method = req.method().as_str();
            let path = req.uri().path();
            match span {
                None => Line {
                    timestamp: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
                    level: level.as_str(),
                    message: "request",
                    method,
                    path,
                    route,
                    status,
                    latency_ms,
                    span: fields,
                    target: module_path!(),
                }
                .write(),
                Some(span) => span.in_scope(|| {
                    if probe {
                        tracing::debug!(method, path, %route, status, latency_ms, "request");
                    } else {
                        tracing::info!(method, path, %route, status, latency_ms, "request");
                    }
                }),
            }
        }
        res.headers_mut().insert(X_REQUEST_ID.clone(), request_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_unique_hex() {
        let log = AccessLog::new(LogFormat::Json);
        let a = log.next_id();
        let b = log.next_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.as_bytes().iter().all(u8::is_ascii_hexdigit));
    }

    #[test]
    fn only_plain_client_ids_are_kept() {
        assert!(is_valid_id(b"abc-123_x.y"));
        assert!(!is_valid_id(b""));
        assert!(!is_valid_id(b"has space"));
        assert!(!is_valid_id(b"quote\"inside"));
        assert!(!is_valid_id(&[b'a'; 129]));
    }
}
