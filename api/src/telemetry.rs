//! Logs, metrics and traces, set up behind `init`; the rest of the code only uses
//! `tracing` macros and the two middlewares `Telemetry` hands out.
//!
//! - logs: `tracing` JSON lines (or pretty) on stdout, level from `RUST_LOG`;
//! - metrics: HTTP server metrics (`http_metrics`), the process collector and
//!   `target_info` in a Prometheus registry, served on the metrics listener;
//! - traces: OTLP export only when an endpoint is configured; otherwise no exporter,
//!   no propagator and no tracing middleware exist at all.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{KeyValue, global};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use salvo::otel::Tracing;
use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{Config, LogFormat};
use crate::http_metrics::HttpMetrics;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot build the OTLP span exporter for {url}: {source}")]
    Exporter {
        url: String,
        source: opentelemetry_otlp::ExporterBuildError,
    },
    #[error("cannot set up Prometheus metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Keeps the tracer provider alive; `shutdown` flushes buffered spans.
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
    registry: prometheus::Registry,
    http_metrics: HttpMetrics,
}

impl Telemetry {
    /// The Prometheus registry the metrics listener serves.
    pub fn registry(&self) -> prometheus::Registry {
        self.registry.clone()
    }

    /// HTTP server metrics middleware, recording into the registry.
    pub fn metrics_middleware(&self) -> HttpMetrics {
        self.http_metrics.clone()
    }

    /// Server-span middleware, only when traces are exported.
    pub fn tracing_middleware(&self) -> Option<Tracing<Tracer>> {
        self.tracer_provider
            .as_ref()
            .map(|provider| Tracing::new(provider.tracer(env!("CARGO_PKG_NAME"))))
    }

    /// Flushes and stops exporters; blocking, run it off the async workers.
    pub fn shutdown(self) {
        if let Some(provider) = self.tracer_provider {
            if let Err(e) = provider.force_flush() {
                tracing::warn!(error = %e, "telemetry: span flush failed");
            }
            if let Err(e) = provider.shutdown() {
                tracing::warn!(error = %e, "telemetry: tracer shutdown failed");
            }
        }
    }
}

/// Installs logging, metrics and (when configured) trace export. Call once.
pub fn init(config: &Config) -> Result<Telemetry, TelemetryError> {
    init_logs(config);
    let (registry, http_metrics) = init_metrics(config)?;
    let tracer_provider = match config.otel.traces_url() {
        Some(url) => Some(init_traces(config, &url, resource(config))?),
        None => None,
    };
    Ok(Telemetry {
        tracer_provider,
        registry,
        http_metrics,
    })
}

fn init_logs(config: &Config) {
    let filter = EnvFilter::builder()
        .parse(&config.log_level)
        .unwrap_or_else(|_| EnvFilter::new("info"));
    match config.log_format {
        LogFormat::Json => json_logs(std::io::stdout, filter).init(),
        LogFormat::Pretty => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stdout)
            .pretty()
            .init(),
    }
    // A panic is one ERROR event (in a panicking request, with its fields) instead of text on stderr.
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        let location = info.location().map(ToString::to_string);
        let span = crate::access_log::request_span().unwrap_or_else(tracing::Span::none);
        tracing::error!(parent: &span, panic = message, location, "panic");
    }));
}

/// One JSON object per event: `timestamp`, `level`, the event's fields at the top level,
/// `target`, and the fields of the span it happened in (the request) under `span`.
/// The library's JSON format; what it costs per request: ADR 0009.
fn json_logs<W>(writer: W, filter: EnvFilter) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .finish()
}

/// `service.name` from config (`OTEL_SERVICE_NAME`), plus `OTEL_RESOURCE_ATTRIBUTES`,
/// which the SDK's builder reads itself.
fn resource(config: &Config) -> Resource {
    Resource::builder()
        .with_service_name(config.otel.service_name.clone())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .with_attribute(KeyValue::new(
            "deployment.environment.name",
            config.env.clone(),
        ))
        .build()
}

/// The registry: HTTP server metrics, the process collector, and `target_info` carrying
/// the resource attributes, as OpenTelemetry's Prometheus exporter names them.
fn init_metrics(config: &Config) -> Result<(prometheus::Registry, HttpMetrics), TelemetryError> {
    let registry = prometheus::Registry::new();
    let http_metrics = HttpMetrics::register(&registry)?;
    registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))?;
    // `service.name` becomes `service_name`, as the OpenTelemetry exporter writes it.
    let labels = resource(config)
        .iter()
        .map(|(key, value)| {
            (
                key.as_str()
                    .replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
                value.to_string(),
            )
        })
        .collect();
    let target_info = prometheus::IntGauge::with_opts(
        prometheus::Opts::new("target_info", "Target metadata").const_labels(labels),
    )?;
    target_info.set(1);
    registry.register(Box::new(target_info))?;
    Ok((registry, http_metrics))
}

fn init_traces(
    config: &Config,
    url: &str,
    resource: Resource,
) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .build()
        .map_err(|source| TelemetryError::Exporter {
            url: url.to_owned(),
            source,
        })?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    global::set_text_map_propagator(TraceContextPropagator::new());
    global::set_tracer_provider(provider.clone());
    tracing::info!(url, protocol = ?config.otel.protocol, "telemetry: exporting traces over OTLP");
    Ok(provider)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// The lines the JSON logs write while `f` runs, parsed.
    fn lines(f: impl FnOnce()) -> Vec<serde_json::Value> {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = json_logs(move || out.clone(), EnvFilter::new("info"));
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn events_are_json_lines_with_their_span_fields() {
        let lines = lines(|| {
            tracing::warn!(answer = 42, "outside");
            let span = tracing::info_span!("request", request_id = "req-1", trace_id = Some("t1"));
            span.in_scope(|| tracing::info!(ok = true, ratio = 0.5, "inside"));
            tracing::info!(parent: &span, status = 200u16, "explicit parent");
            tracing::debug!("filtered out");
        });
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0]["message"], "outside");
        assert_eq!(lines[0]["answer"], 42);
        assert_eq!(lines[0]["level"], "WARN");
        assert!(lines[0].get("span").is_none());
        let ts = lines[0]["timestamp"].as_str().unwrap();
        let parsed = chrono::DateTime::parse_from_rfc3339(ts).unwrap();
        let age = chrono::Utc::now() - parsed.to_utc();
        assert!(age.num_seconds().abs() < 5, "{ts}");
        assert_eq!((ts.len(), &ts[19..20], &ts[26..]), (27, ".", "Z"), "{ts}");
        assert_eq!(lines[1]["ok"], true);
        assert_eq!(lines[1]["ratio"], 0.5);
        let span = serde_json::json!({"request_id": "req-1", "trace_id": "t1", "name": "request"});
        assert_eq!(lines[1]["span"], span);
        assert_eq!(lines[2]["span"], span);
        assert_eq!(lines[2]["status"], 200);
        assert_eq!(lines[2]["target"], module_path!());
    }

    #[test]
    fn strings_are_escaped_and_odd_numbers_stay_json() {
        let nasty = "quote\" backslash\\ newline\n tab\t bell\u{7} é";
        let lines = lines(|| {
            tracing::info!(value = nasty, debug = ?nasty, nan = f64::NAN, big = u128::MAX, "m\"sg");
        });
        assert_eq!(lines[0]["value"], nasty);
        assert_eq!(lines[0]["debug"], format!("{nasty:?}"));
        assert_eq!(lines[0]["nan"], serde_json::Value::Null);
        assert_eq!(lines[0]["big"], u128::MAX.to_string());
        assert_eq!(lines[0]["message"], "m\"sg");
    }
}
