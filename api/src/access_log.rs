//! Per request: the request id (the client's when it is a plain token, else generated;
//! echoed in `X-Request-Id`), a `tracing` span `request` carrying it, so every event of
//! the request has it under `span`, and one `request` event once the answer is ready.
//! Probes log at debug level only.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use opentelemetry::trace::TraceContextExt;
use salvo::http::header::{HeaderName, HeaderValue};
use salvo::prelude::*;
use tracing::Instrument;

use crate::route::{self, Route};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub struct AccessLog {
    prefix: u64,
    counter: AtomicU64,
    /// Whether spans are exported, so the trace id lookup costs nothing otherwise.
    traces: bool,
}

impl AccessLog {
    pub fn new(traces: bool) -> Self {
        // A per-process random prefix keeps generated ids unique across replicas.
        let prefix = RandomState::new().build_hasher().finish();
        Self {
            prefix,
            counter: AtomicU64::new(0),
            traces,
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

/// The OpenTelemetry trace the request belongs to (set by the tracing middleware).
fn trace_id() -> Option<String> {
    let cx = opentelemetry::Context::current();
    let span = cx.span();
    let context = span.span_context();
    context.is_valid().then(|| context.trace_id().to_string())
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
        let id = request_id.to_str().unwrap_or("-");
        let trace_id = if self.traces { trace_id() } else { None };
        let trace_id = trace_id.as_deref();
        let probe = route::is_probe(req.uri().path());
        // A level is static per call site: one span (and one event) per level.
        let span = if probe {
            tracing::debug_span!("request", request_id = id, trace_id)
        } else {
            tracing::info_span!("request", request_id = id, trace_id)
        };
        ctrl.call_next(req, depot, res)
            .instrument(span.clone())
            .await;

        if !span.is_disabled() {
            let status = res.status_code.unwrap_or(StatusCode::OK);
            let route = Route::of(req, status);
            let status = status.as_u16();
            // Whole microseconds keep the JSON short (0.321, not 0.32165299999999997).
            let latency_ms = started.elapsed().as_micros() as f64 / 1000.0;
            let (method, path) = (req.method().as_str(), req.uri().path());
            if probe {
                tracing::debug!(parent: &span, method, path, %route, status, latency_ms, "request");
            } else {
                tracing::info!(parent: &span, method, path, %route, status, latency_ms, "request");
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
        let log = AccessLog::new(false);
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
