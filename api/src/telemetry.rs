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
use tracing_subscriber::EnvFilter;

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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    match config.log_format {
        LogFormat::Json => builder
            .event_format(crate::log_format::JsonLine)
            .fmt_fields(crate::log_format::JsonFields)
            .init(),
        LogFormat::Pretty => builder.pretty().init(),
    }
    // A panic is one ERROR event (with the request's fields) instead of text on stderr.
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        let location = info.location().map(ToString::to_string);
        tracing::error!(panic = message, location, "panic");
    }));
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
