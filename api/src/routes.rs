//! HTTP routes of the public listener: handlers translate HTTP to plain values, the
//! router and error catcher are declared in `service`.

use std::panic::AssertUnwindSafe;

use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use futures_util::FutureExt;
use salvo::catcher::Catcher;
use salvo::http::ResBody;
use salvo::http::header::{self, HeaderValue};
use salvo::prelude::*;
use serde::Serialize;

use crate::access_log::AccessLog;
use crate::config::Config;
use crate::readiness::Readiness;
use crate::telemetry::Telemetry;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Git revision baked in at build time (`DATAPRESS_REVISION`), `unknown` otherwise.
pub const REVISION: &str = match option_env!("DATAPRESS_REVISION") {
    Some(rev) if !rev.is_empty() => rev,
    _ => "unknown",
};

static JSON: HeaderValue = HeaderValue::from_static("application/json");

fn json(res: &mut Response, status: StatusCode, body: Bytes) {
    res.status_code(status);
    res.headers_mut().insert(header::CONTENT_TYPE, JSON.clone());
    res.body(body);
}

/// `GET /`: identity and current time; everything but `ts` is computed once.
struct Root {
    tail: Bytes,
}

impl Root {
    fn new(config: &Config) -> Self {
        #[derive(Serialize)]
        struct Tail<'a> {
            env: &'a str,
            version: &'a str,
            revision: &'a str,
        }
        let tail = serde_json::to_vec(&Tail {
            env: &config.env,
            version: VERSION,
            revision: REVISION,
        })
        .unwrap_or_default();
        // `{"env":...}` becomes `,"env":...}` appended after the timestamp.
        let mut bytes = Vec::with_capacity(tail.len() + 2);
        bytes.extend_from_slice(b"\",");
        bytes.extend_from_slice(&tail[1..]);
        Self {
            tail: Bytes::from(bytes),
        }
    }
}

#[handler]
impl Root {
    async fn handle(&self, res: &mut Response) {
        const HEAD: &[u8] = br#"{"service":"api","ts":""#;
        let ts = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
        let mut body = Vec::with_capacity(HEAD.len() + ts.len() + self.tail.len());
        body.extend_from_slice(HEAD);
        body.extend_from_slice(ts.as_bytes());
        body.extend_from_slice(&self.tail);
        json(res, StatusCode::OK, Bytes::from(body));
    }
}

#[handler]
async fn health(res: &mut Response) {
    json(
        res,
        StatusCode::OK,
        Bytes::from_static(br#"{"status":"ok"}"#),
    );
}

struct Ready(Readiness);

#[handler]
impl Ready {
    async fn handle(&self, res: &mut Response) {
        if self.0.is_ready() {
            json(
                res,
                StatusCode::OK,
                Bytes::from_static(br#"{"status":"ready"}"#),
            );
        } else {
            json(
                res,
                StatusCode::SERVICE_UNAVAILABLE,
                Bytes::from_static(br#"{"status":"draining"}"#),
            );
        }
    }
}

/// The non-secret view of the configuration served by `GET /info`.
#[derive(Serialize)]
pub struct PublicInfo<'a> {
    pub service: &'static str,
    pub env: &'a str,
    pub banner: &'a str,
    pub version: &'static str,
    pub revision: &'static str,
    pub listen: String,
    pub metrics_listen: String,
    pub log_format: crate::config::LogFormat,
    pub drain_seconds: u64,
    pub shutdown_timeout_seconds: u64,
    pub telemetry: TelemetryInfo<'a>,
    pub db_password: &'static str,
}

#[derive(Serialize)]
pub struct TelemetryInfo<'a> {
    pub metrics: bool,
    pub traces: bool,
    pub service_name: &'a str,
}

impl<'a> PublicInfo<'a> {
    pub fn new(config: &'a Config) -> Self {
        Self {
            service: "api",
            env: &config.env,
            banner: &config.banner,
            version: VERSION,
            revision: REVISION,
            listen: config.listen.to_string(),
            metrics_listen: config.metrics_listen.to_string(),
            log_format: config.log_format,
            drain_seconds: config.drain_seconds,
            shutdown_timeout_seconds: config.shutdown_timeout_seconds,
            telemetry: TelemetryInfo {
                metrics: true,
                traces: config.traces_enabled(),
                service_name: &config.otel.service_name,
            },
            db_password: if config.db_password.is_some() {
                "set"
            } else {
                "unset"
            },
        }
    }
}

struct Info {
    body: Bytes,
}

#[handler]
impl Info {
    async fn handle(&self, res: &mut Response) {
        json(res, StatusCode::OK, self.body.clone());
    }
}

/// Routes take no body: reject one up front rather than read it.
#[handler]
async fn reject_body(req: &mut Request, res: &mut Response, ctrl: &mut FlowCtrl) {
    // Unmatched requests already carry their 404/405 for the catcher.
    if res.status_code.is_some() {
        return;
    }
    let headers = req.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|len| len.as_bytes() != b"0");
    if has_body {
        json(
            res,
            StatusCode::PAYLOAD_TOO_LARGE,
            Bytes::from_static(br#"{"error":"body_not_allowed"}"#),
        );
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        ctrl.skip_rest();
    }
}

/// While draining, ask keep-alive clients to reconnect elsewhere.
struct CloseWhenDraining(Readiness);

#[handler]
impl CloseWhenDraining {
    async fn handle(&self, res: &mut Response) {
        if !self.0.is_ready() {
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
}

/// The catcher of both listeners: every error status becomes a small JSON document.
pub fn json_catcher() -> Catcher {
    Catcher::new(json_error)
}

/// Every error status becomes a small JSON document, never an HTML page.
#[handler]
async fn json_error(req: &mut Request, res: &mut Response, ctrl: &mut FlowCtrl) {
    #[derive(Serialize)]
    struct ErrorBody<'a> {
        error: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        method: Option<&'a str>,
    }
    let status = res.status_code.unwrap_or(StatusCode::NOT_FOUND);
    let body = match status {
        StatusCode::NOT_FOUND => ErrorBody {
            error: "not_found",
            path: Some(req.uri().path()),
            method: None,
        },
        StatusCode::METHOD_NOT_ALLOWED => ErrorBody {
            error: "method_not_allowed",
            path: Some(req.uri().path()),
            method: Some(req.method().as_str()),
        },
        other => ErrorBody {
            error: &other
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase()
                .replace(' ', "_"),
            path: None,
            method: None,
        },
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    json(res, status, Bytes::from(bytes));
    ctrl.skip_rest();
}

#[cfg(debug_assertions)]
#[handler]
async fn panicking() {
    panic!("test-panic route");
}

/// Runs a middleware on every request but the probes, polled by orchestrators many times a
/// minute (no span exported for them).
struct UnlessProbe<H>(H);

#[async_trait]
impl<H: Handler> Handler for UnlessProbe<H> {
    async fn handle(
        &self,
        req: &mut Request,
        depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        if crate::access_log::is_probe(req.uri().path()) {
            ctrl.call_next(req, depot, res).await;
        } else {
            self.0.handle(req, depot, res, ctrl).await;
        }
    }
}

/// A panic in a handler becomes a 500 (JSON, from the catcher) on its own request; the
/// panic hook (telemetry) has logged it, the request metrics count the 500.
#[handler]
async fn catch_panic(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let next = AssertUnwindSafe(ctrl.call_next(req, depot, res));
    if next.catch_unwind().await.is_err() {
        res.status_code(StatusCode::INTERNAL_SERVER_ERROR);
        res.body = ResBody::None;
        ctrl.skip_rest();
    }
}

/// One route: GET (and HEAD, answered without a body by salvo) on `path`.
fn get(path: &str, handler: impl Handler) -> Router {
    let handler = handler.arc();
    let router = if path.is_empty() {
        Router::new()
    } else {
        Router::with_path(path)
    };
    router.get(handler.clone()).head(handler)
}

/// The public service: routes, middlewares and the JSON error catcher in one place.
pub fn service(config: &Config, readiness: Readiness, telemetry: &Telemetry) -> Service {
    let info = serde_json::to_vec(&PublicInfo::new(config)).unwrap_or_default();
    let router = Router::new()
        .push(get("", Root::new(config)))
        .push(get("health", health))
        .push(get("ready", Ready(readiness.clone())))
        .push(get("info", Info { body: info.into() }));
    // Integration tests only (tests/http.rs): a route that panics; never in a release build.
    #[cfg(debug_assertions)]
    let router = if std::env::var_os("DATAPRESS_TEST_PANIC_ROUTE").is_some() {
        router.push(get("test-panic", panicking))
    } else {
        router
    };
    let mut service = Service::new(router);
    // Outermost first: the trace context exists before the access log reads its id.
    if let Some(tracing) = telemetry.tracing_middleware() {
        service = service.hoop(UnlessProbe(tracing));
    }
    service
        .hoop(telemetry.metrics_middleware())
        .hoop(AccessLog::new(config.log_format))
        .hoop(catch_panic)
        .hoop(CloseWhenDraining(readiness))
        .hoop(reject_body)
        .catcher(json_catcher())
}
