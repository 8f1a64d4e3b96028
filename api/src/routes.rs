//! HTTP routes of the public listener: handlers translate HTTP to plain values, the
//! router, its middlewares and the error catcher are declared in `service`.

use std::panic::AssertUnwindSafe;

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

/// `GET /`: who answers, and when (RFC 3339, UTC, microseconds).
#[derive(Serialize)]
struct Identity<'a> {
    service: &'static str,
    ts: String,
    env: &'a str,
    version: &'static str,
    revision: &'static str,
}

struct Root {
    env: String,
}

#[handler]
impl Root {
    async fn handle(&self, res: &mut Response) {
        res.render(Json(Identity {
            service: "api",
            ts: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
            env: &self.env,
            version: VERSION,
            revision: REVISION,
        }));
    }
}

#[derive(Serialize)]
struct Status {
    status: &'static str,
}

#[handler]
async fn health(res: &mut Response) {
    res.render(Json(Status { status: "ok" }));
}

struct Ready(Readiness);

#[handler]
impl Ready {
    async fn handle(&self, res: &mut Response) {
        if self.0.is_ready() {
            res.render(Json(Status { status: "ready" }));
        } else {
            res.status_code(StatusCode::SERVICE_UNAVAILABLE);
            res.render(Json(Status { status: "draining" }));
        }
    }
}

/// `GET /info`: the non-secret view of the configuration, built once.
struct Info(serde_json::Value);

impl Info {
    fn new(config: &Config) -> Self {
        Self(serde_json::json!({
            "service": "api",
            "env": config.env,
            "banner": config.banner,
            "version": VERSION,
            "revision": REVISION,
            "listen": config.listen,
            "metrics_listen": config.metrics_listen,
            "log_format": config.log_format,
            "drain_seconds": config.drain_seconds,
            "shutdown_timeout_seconds": config.shutdown_timeout_seconds,
            "telemetry": {
                "metrics": true,
                "traces": config.traces_enabled(),
                "service_name": config.otel.service_name,
            },
            "db_password": if config.db_password.is_some() { "set" } else { "unset" },
        }))
    }
}

#[handler]
impl Info {
    async fn handle(&self, res: &mut Response) {
        res.render(Json(&self.0));
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
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
        res.status_code(StatusCode::PAYLOAD_TOO_LARGE);
        res.render(Json(ErrorBody {
            error: "body_not_allowed",
            path: None,
            method: None,
        }));
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

/// Runs a middleware on every request but the probes (no span exported for them).
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
        if crate::route::is_probe(req.uri().path()) {
            ctrl.call_next(req, depot, res).await;
        } else {
            self.0.handle(req, depot, res, ctrl).await;
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
    let status = res.status_code.unwrap_or(StatusCode::NOT_FOUND);
    let reason = status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase()
        .replace(' ', "_");
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
        _ => ErrorBody {
            error: &reason,
            path: None,
            method: None,
        },
    };
    res.render(Json(body));
    ctrl.skip_rest();
}

#[cfg(debug_assertions)]
#[handler]
async fn panicking() {
    panic!("test-panic route");
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
    let router = Router::new()
        .push(get(
            "",
            Root {
                env: config.env.clone(),
            },
        ))
        .push(get("health", health))
        .push(get("ready", Ready(readiness.clone())))
        .push(get("info", Info::new(config)));
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
        .hoop(AccessLog::new(config.traces_enabled(), config.log_format))
        .hoop(catch_panic)
        .hoop(CloseWhenDraining(readiness))
        .hoop(reject_body)
        .catcher(json_catcher())
}
