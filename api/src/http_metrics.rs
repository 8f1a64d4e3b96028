//! HTTP server metrics, recorded straight into the Prometheus registry the metrics
//! listener serves. Names and labels follow OpenTelemetry's HTTP semantic conventions
//! as its Prometheus exporter renders them (`http_server_request_duration_seconds`,
//! `http_route`, `http_response_status_code`…).
//!
//! Going through the OpenTelemetry metrics SDK cost 0.3 to 0.4 µs a request more
//! (attribute sorting and SipHash over 3 instruments; A/B in docs/performance.md, ADR
//! 0008); here a request costs three label lookups (FNV) and a few atomic adds. Every
//! label comes from a bounded set: the route template (never the requested path), the
//! known methods, the status.

use std::time::Instant;

use prometheus::{HistogramOpts, HistogramVec, IntGauge, IntGaugeVec, Opts, Registry};
use salvo::http::{Method, StatusCode, Version};
use salvo::prelude::*;

use crate::route::Route;

/// Seconds; the boundaries the HTTP conventions recommend for the request duration.
const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// Bytes, 1 KiB to 64 MiB (the conventions prescribe none).
const BODY_SIZE_BUCKETS: &[f64] = &[
    1_024.0,
    4_096.0,
    16_384.0,
    65_536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
];
const LABELS: &[&str] = &[
    "http_request_method",
    "url_scheme",
    "network_protocol_version",
    "http_route",
    "http_response_status_code",
];

/// The middleware, and the instruments it registered.
#[derive(Clone)]
pub struct HttpMetrics {
    duration: HistogramVec,
    active: IntGaugeVec,
    response_size: HistogramVec,
}

impl HttpMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_server_request_duration_seconds",
                "Duration of HTTP server requests.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            LABELS,
        )?;
        let active = IntGaugeVec::new(
            Opts::new(
                "http_server_active_requests",
                "Number of active HTTP server requests.",
            ),
            &LABELS[..2],
        )?;
        let response_size = HistogramVec::new(
            HistogramOpts::new(
                "http_server_response_body_size_bytes",
                "Size of HTTP server response bodies.",
            )
            .buckets(BODY_SIZE_BUCKETS.to_vec()),
            LABELS,
        )?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(active.clone()))?;
        registry.register(Box::new(response_size.clone()))?;
        Ok(Self {
            duration,
            active,
            response_size,
        })
    }
}

/// Methods a client cannot invent: anything else is `_OTHER`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => "_OTHER",
    }
}

fn version_label(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// Keeps `http_server_active_requests` balanced when the request future is dropped
/// (client gone, forced stop) as well as when it completes.
struct Active(IntGauge);

impl Active {
    fn enter(gauge: IntGauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[async_trait]
impl Handler for HttpMetrics {
    async fn handle(
        &self,
        req: &mut Request,
        depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        let method = method_label(req.method());
        // The listener's scheme, never the client's absolute-form URI.
        let scheme = if req.scheme() == &salvo::http::uri::Scheme::HTTPS {
            "https"
        } else {
            "http"
        };
        let _active = Active::enter(self.active.with_label_values(&[method, scheme]));
        let started = Instant::now();
        ctrl.call_next(req, depot, res).await;

        let status = res.status_code.unwrap_or(StatusCode::OK);
        let route = Route::of(req, status).template();
        let labels = [
            method,
            scheme,
            version_label(req.version()),
            route.as_deref().unwrap_or(""),
            status.as_str(),
        ];
        self.duration
            .with_label_values(&labels)
            .observe(started.elapsed().as_secs_f64());
        // Error documents are written by the catcher, after this: their size is unknown here.
        let catcher_writes =
            res.body.is_none() && (status.is_client_error() || status.is_server_error());
        if req.method() != Method::HEAD
            && !catcher_writes
            && let Some(size) = res.body.size()
        {
            self.response_size
                .with_label_values(&labels)
                .observe(size as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_collapse_to_other() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(
            method_label(&Method::from_bytes(b"PROPFIND").unwrap()),
            "_OTHER"
        );
    }

    #[test]
    fn instruments_register_once() {
        let registry = Registry::new();
        assert!(HttpMetrics::register(&registry).is_ok());
        assert!(HttpMetrics::register(&registry).is_err(), "duplicate names");
    }
}
