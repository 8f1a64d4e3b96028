//! The request log. Per request: the request id (the client's when it is a plain token, else
//! generated; echoed in `X-Request-Id`) and, once the answer is ready, one JSON line with the
//! request's fields, written by hand in one `write`: a `tracing` span and event per request
//! cost more than the target allows (ADR 0009, `docs/performance.md`). Probes log at debug
//! level only; the level filter (`RUST_LOG`) is the subscriber's, asked through `enabled!`.
//! Other events (a panic) get the request's fields from `request_span`, built on demand.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::{SecondsFormat, Utc};
use opentelemetry::trace::TraceContextExt;
use salvo::http::header::{HeaderName, HeaderValue};
use salvo::prelude::*;
use tracing::Level;

use crate::config::LogFormat;
use crate::route::{self, Route};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    /// The id of the request the current task serves.
    static REQUEST_ID: HeaderValue;
}

/// A `request` span with the fields of the request the current task serves (`request_id`,
/// `trace_id`), so that an event logged in it carries them under `span`; `None` outside a
/// request. Built only when such an event happens (a panic), never per request.
pub fn request_span() -> Option<tracing::Span> {
    REQUEST_ID
        .try_with(|id| {
            let trace_id = trace_id();
            tracing::error_span!(
                "request",
                request_id = id.to_str().unwrap_or("-"),
                trace_id = trace_id.as_deref()
            )
        })
        .ok()
}

pub struct AccessLog {
    prefix: u64,
    counter: AtomicU64,
    /// Whether spans are exported, so the trace id lookup costs nothing otherwise.
    traces: bool,
    format: LogFormat,
}

impl AccessLog {
    pub fn new(traces: bool, format: LogFormat) -> Self {
        // A per-process random prefix keeps generated ids unique across replicas.
        let prefix = RandomState::new().build_hasher().finish();
        Self {
            prefix,
            counter: AtomicU64::new(0),
            traces,
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
        REQUEST_ID
            .scope(request_id.clone(), ctrl.call_next(req, depot, res))
            .await;

        let probe = route::is_probe(req.uri().path());
        // A level is static per call site: one check per level.
        let (level, enabled) = if probe {
            (Level::DEBUG, tracing::enabled!(Level::DEBUG))
        } else {
            (Level::INFO, tracing::enabled!(Level::INFO))
        };
        if enabled {
            let status = res.status_code.unwrap_or(StatusCode::OK);
            let trace_id = if self.traces { trace_id() } else { None };
            let line = Line {
                level,
                method: req.method().as_str(),
                path: req.uri().path(),
                route: Route::of(req, status),
                status: status.as_u16(),
                latency_us: started.elapsed().as_micros(),
                request_id: request_id.to_str().unwrap_or("-"),
                trace_id: trace_id.as_deref(),
            };
            match self.format {
                LogFormat::Json => line.write_json(),
                LogFormat::Pretty => line.event(),
            }
        }
        res.headers_mut().insert(X_REQUEST_ID.clone(), request_id);
    }
}

/// The fields of one request's log line.
struct Line<'a> {
    level: Level,
    method: &'a str,
    path: &'a str,
    route: Route<'a>,
    status: u16,
    latency_us: u128,
    request_id: &'a str,
    trace_id: Option<&'a str>,
}

impl Line<'_> {
    /// Whole microseconds keep the JSON short (0.321, not 0.32165299999999997).
    fn latency_ms(&self) -> f64 {
        self.latency_us as f64 / 1000.0
    }

    /// The JSON line, in the schema of the subscriber's JSON format (`telemetry`): the
    /// same keys as a `request` event in a `request` span. Strings are escaped by serde_json.
    fn json(&self, timestamp: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(320);
        push_string(&mut out, "{\"timestamp\":", timestamp);
        push_string(&mut out, ",\"level\":", self.level.as_str());
        out.extend_from_slice(b",\"message\":\"request\"");
        push_string(&mut out, ",\"method\":", self.method);
        push_string(&mut out, ",\"path\":", self.path);
        push_string(&mut out, ",\"route\":", &self.route.to_string());
        let _ = write!(out, ",\"status\":{},\"latency_ms\":", self.status);
        let _ = serde_json::to_writer(&mut out, &self.latency_ms());
        push_string(&mut out, ",\"target\":", module_path!());
        push_string(&mut out, ",\"span\":{\"request_id\":", self.request_id);
        if let Some(trace_id) = self.trace_id {
            push_string(&mut out, ",\"trace_id\":", trace_id);
        }
        out.extend_from_slice(b",\"name\":\"request\"}}\n");
        out
    }

    /// One line, one `write` on stdout (the subscriber's writer too, behind the same lock).
    fn write_json(&self) {
        let line = self.json(&Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true));
        let _ = std::io::stdout().lock().write_all(&line);
    }

    /// The human-readable format (`DATAPRESS_LOG_FORMAT=pretty`) goes through the subscriber.
    fn event(&self) {
        let (method, path, route, status) = (self.method, self.path, &self.route, self.status);
        let (request_id, trace_id, latency_ms) =
            (self.request_id, self.trace_id, self.latency_ms());
        if self.level == Level::DEBUG {
            tracing::debug!(method, path, %route, status, latency_ms, request_id, trace_id, "request");
        } else {
            tracing::info!(method, path, %route, status, latency_ms, request_id, trace_id, "request");
        }
    }
}

/// `key` as given, then `value` as a JSON string.
fn push_string(out: &mut Vec<u8>, key: &str, value: &str) {
    out.extend_from_slice(key.as_bytes());
    let _ = serde_json::to_writer(&mut *out, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(path: &str, trace_id: Option<&str>) -> serde_json::Value {
        let req = Request::default();
        let line = Line {
            level: Level::INFO,
            method: "GET",
            path,
            route: Route::of(&req, StatusCode::NOT_FOUND),
            status: 404,
            latency_us: 1234,
            request_id: "req-1",
            trace_id,
        };
        let bytes = line.json("2026-12-03T06:00:00.000001Z");
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(bytes.last(), Some(&b'\n'));
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn the_line_has_the_event_schema() {
        let got = line("/nope", Some("0af7651916cd43dd8448eb211c80319c"));
        let want = serde_json::json!({
            "timestamp": "2026-12-03T06:00:00.000001Z", "level": "INFO", "message": "request",
            "method": "GET", "path": "/nope", "route": "-", "status": 404, "latency_ms": 1.234,
            "target": "datapress_api::access_log",
            "span": {"request_id": "req-1", "trace_id": "0af7651916cd43dd8448eb211c80319c", "name": "request"},
        });
        assert_eq!(got, want);
        let untraced = line("/nope", None);
        assert_eq!(
            untraced["span"],
            serde_json::json!({"request_id": "req-1", "name": "request"})
        );
    }

    #[test]
    fn the_line_escapes_what_it_quotes() {
        let nasty = "/quote\" backslash\\ newline\n tab\t bell\u{7} é";
        assert_eq!(line(nasty, None)["path"], nasty);
    }

    #[test]
    fn generated_ids_are_unique_hex() {
        let log = AccessLog::new(false, LogFormat::Json);
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
