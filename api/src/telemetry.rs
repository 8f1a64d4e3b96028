//! Logs, metrics and traces, set up behind `init`; the rest of the code only uses
//! `tracing` macros and the two middlewares `Telemetry` hands out.
//!
//! - logs: `tracing` JSON lines (or pretty) on stdout, level from `RUST_LOG`;
//! - metrics: OpenTelemetry instruments (salvo-otel's HTTP server conventions) read by a
//!   Prometheus registry, with the process collector, served on the metrics listener;
//! - traces: OTLP export only when an endpoint is configured; otherwise no exporter,
//!   no propagator and no tracing middleware exist at all.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry::{Context, KeyValue, global};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use salvo::otel::{Metrics, Tracing};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat, OtlpProtocol};

/// Set once traces are exported, so the per-request trace id lookup costs nothing otherwise.
static TRACES_ON: AtomicBool = AtomicBool::new(false);

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot build the OTLP span exporter for {url}: {source}")]
    Exporter {
        url: String,
        source: opentelemetry_otlp::ExporterBuildError,
    },
    #[error("cannot set up Prometheus metrics: {0}")]
    Metrics(String),
}

/// Keeps the providers alive; `shutdown` flushes buffered spans.
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: SdkMeterProvider,
    registry: prometheus::Registry,
}

impl Telemetry {
    /// The Prometheus registry the metrics listener serves.
    pub fn registry(&self) -> prometheus::Registry {
        self.registry.clone()
    }

    /// HTTP server metrics middleware, bound to the installed meter provider.
    pub fn metrics_middleware(&self) -> Metrics {
        Metrics::new()
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
        let _ = self.meter_provider.shutdown();
    }
}

/// Installs logging, metrics and (when configured) trace export. Call once.
pub fn init(config: &Config) -> Result<Telemetry, TelemetryError> {
    init_logs(config);
    let resource = resource(config);
    let (meter_provider, registry) = init_metrics(resource.clone())?;
    let tracer_provider = match config.otel.traces_url() {
        Some(url) => Some(init_traces(config, &url, resource)?),
        None => None,
    };
    Ok(Telemetry {
        tracer_provider,
        meter_provider,
        registry,
    })
}

fn init_logs(config: &Config) {
    let filter = EnvFilter::builder()
        .parse(&config.log_level)
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::log_sink::Stdout);
    match config.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Pretty => builder.pretty().init(),
    }
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

fn init_metrics(
    resource: Resource,
) -> Result<(SdkMeterProvider, prometheus::Registry), TelemetryError> {
    let registry = prometheus::Registry::new();
    let exporter = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .build()
        .map_err(|e| TelemetryError::Metrics(e.to_string()))?;
    registry
        .register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .map_err(|e| TelemetryError::Metrics(e.to_string()))?;
    let provider = SdkMeterProvider::builder()
        .with_reader(exporter)
        .with_resource(resource)
        .build();
    global::set_meter_provider(provider.clone());
    Ok((provider, registry))
}

fn init_traces(
    config: &Config,
    url: &str,
    resource: Resource,
) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = match config.otel.protocol {
        OtlpProtocol::HttpProtobuf => SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url)
            .build(),
        OtlpProtocol::Grpc => SpanExporter::builder()
            .with_tonic()
            .with_endpoint(url)
            .build(),
    }
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
    TRACES_ON.store(true, Ordering::Release);
    tracing::info!(url, protocol = ?config.otel.protocol, "telemetry: exporting traces over OTLP");
    Ok(provider)
}

/// The current OpenTelemetry trace id, when traces are exported and one is active.
pub fn current_trace_id() -> Option<TraceId> {
    if !TRACES_ON.load(Ordering::Relaxed) {
        return None;
    }
    let cx = Context::current();
    let span_context = cx.span().span_context().clone();
    span_context.is_valid().then(|| span_context.trace_id())
}
