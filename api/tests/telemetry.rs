//! Metrics on their own listener and OTLP traces, against the real binary.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{Api, get};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// The value of one `name{labels} value` sample line whose labels contain all of `labels`.
fn sample(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_are_served_on_their_own_port_only() {
    let api = Api::start(&[]);
    for _ in 0..3 {
        api.get("/info");
    }
    api.get("/health");
    api.get("/nope");
    let res = get(api.metrics_addr, "/metrics");
    assert_eq!(res.status, 200);
    assert!(
        res.header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text();

    let count = "http_server_request_duration_seconds_count";
    let info = sample(
        &text,
        count,
        &["http_route=\"/info\"", "http_response_status_code=\"200\""],
    );
    assert_eq!(info, Some(3.0), "{text}");
    let health = sample(
        &text,
        count,
        &[
            "http_route=\"/health\"",
            "http_response_status_code=\"200\"",
        ],
    );
    assert!(health >= Some(1.0), "startup probe plus ours: {text}");
    let missing = sample(&text, count, &["http_response_status_code=\"404\""]);
    assert_eq!(missing, Some(1.0), "{text}");
    let bucket = sample(
        &text,
        "http_server_request_duration_seconds_bucket",
        &["http_route=\"/info\"", "le=\"+Inf\""],
    );
    assert_eq!(bucket, Some(3.0), "{text}");
    assert!(text.contains("# TYPE http_server_request_duration_seconds histogram"));
    let info_size = sample(
        &text,
        "http_server_response_body_size_bytes_count",
        &["http_route=\"/info\""],
    );
    assert_eq!(info_size, Some(3.0), "{text}");
    let error_size = sample(
        &text,
        "http_server_response_body_size_bytes_count",
        &["http_response_status_code=\"404\""],
    );
    assert_eq!(
        error_size, None,
        "written by the catcher, size unknown: {text}"
    );
    let method_name = sample(
        &text,
        "http_server_active_requests",
        &["http_request_method=\"GET\""],
    );
    assert_eq!(method_name, Some(0.0), "{text}");
    // Process metrics from the Prometheus client library.
    assert!(sample(&text, "process_resident_memory_bytes", &[]).is_none());
    assert!(
        text.lines()
            .any(|l| l.starts_with("process_resident_memory_bytes ")),
        "{text}"
    );
    assert!(
        text.contains("service_name=\"datapress-api\""),
        "target_info: {text}"
    );

    assert_eq!(api.get("/metrics").status, 404, "never on the public port");
    assert_eq!(get(api.metrics_addr, "/").status, 404);
}

/// A minimal OTLP/HTTP receiver: decodes every `ExportTraceServiceRequest` it is sent.
struct Receiver {
    addr: SocketAddr,
    requests: mpsc::Receiver<ExportTraceServiceRequest>,
    connections: mpsc::Receiver<()>,
}

impl Receiver {
    fn start() -> Self {
        Self::on(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    fn on(listener: TcpListener) -> Self {
        let addr = listener.local_addr().unwrap();
        let (tx, requests) = mpsc::channel();
        let (conn_tx, connections) = mpsc::channel();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let _ = conn_tx.send(());
                let tx = tx.clone();
                thread::spawn(move || serve(stream, &tx));
            }
        });
        Self {
            addr,
            requests,
            connections,
        }
    }

    /// Spans received until one matches `pred` (or the deadline passes).
    fn wait_span(
        &self,
        limit: Duration,
        pred: impl Fn(&Span) -> bool,
    ) -> Option<(ExportTraceServiceRequest, Span)> {
        let deadline = Instant::now() + limit;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(request) = self.requests.recv_timeout(left) else {
                return None;
            };
            let found = request
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
                .find(|s| pred(s))
                .cloned();
            if let Some(span) = found {
                return Some((request, span));
            }
        }
        None
    }
}

fn serve(stream: TcpStream, tx: &mpsc::Sender<ExportTraceServiceRequest>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let (mut length, mut chunked) = (0usize, false);
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap(),
                "transfer-encoding" => chunked = value.contains("chunked"),
                _ => {}
            }
        }
        let mut body = vec![0u8; length];
        if chunked {
            body.clear();
            loop {
                let mut size = String::new();
                reader.read_line(&mut size).unwrap();
                let size = usize::from_str_radix(size.trim(), 16).unwrap();
                let mut chunk = vec![0u8; size + 2];
                reader.read_exact(&mut chunk).unwrap();
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            reader.read_exact(&mut body).unwrap();
        }
        if line.starts_with("POST /v1/traces")
            && let Ok(request) = ExportTraceServiceRequest::decode(body.as_slice())
        {
            let _ = tx.send(request);
        }
        let _ = stream.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n",
        );
    }
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn spans_reach_an_otlp_receiver_and_continue_the_callers_trace() {
    let receiver = Receiver::start();
    let endpoint = format!("http://{}", receiver.addr);
    let api = Api::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "k8s.namespace.name=datapress-recette",
        ),
    ]);
    assert_eq!(api.get("/info").json()["telemetry"]["traces"], true);

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_id = "00f067aa0ba902b7";
    let res = api.request(&format!(
        "GET /info HTTP/1.1\r\nHost: t\r\ntraceparent: 00-{trace_id}-{parent_id}-01\r\n\
         X-Request-Id: traced-1\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(res.status, 200);

    let (request, span) = receiver
        .wait_span(Duration::from_secs(10), |s| hex(&s.trace_id) == trace_id)
        .expect("a span of the caller's trace reaches the receiver");
    assert_eq!(hex(&span.parent_span_id), parent_id);
    assert_eq!(span.name, "GET /info");
    assert!(
        matches!(attr(&span.attributes, "http.route"), Some(any_value::Value::StringValue(r)) if r == "/info")
    );
    assert!(matches!(
        attr(&span.attributes, "http.response.status_code"),
        Some(any_value::Value::IntValue(200))
    ));
    let resource = request.resource_spans[0].resource.as_ref().unwrap();
    assert!(matches!(
        attr(&resource.attributes, "service.name"),
        Some(any_value::Value::StringValue(s)) if s == "datapress-api"
    ));
    assert!(matches!(
        attr(&resource.attributes, "k8s.namespace.name"),
        Some(any_value::Value::StringValue(s)) if s == "datapress-recette"
    ));

    // The trace id is in the request's log line.
    api.wait_log("with the trace id", |l| l.contains("traced-1"));
    let line = api
        .json_logs()
        .into_iter()
        .find(|l| l["span"]["request_id"] == "traced-1")
        .unwrap();
    assert_eq!(line["span"]["trace_id"], trace_id);
}

#[test]
fn spans_are_flushed_during_shutdown() {
    let receiver = Receiver::start();
    let endpoint = format!("http://{}", receiver.addr);
    // A schedule delay far beyond the test: only the shutdown flush can deliver.
    let mut api = Api::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
        ("OTEL_SERVICE_NAME", "datapress-api-flush"),
    ]);
    api.get("/");
    api.signal("TERM");
    assert_eq!(api.wait_exit(Duration::from_secs(10)).code(), Some(0));
    let (request, _) = receiver
        .wait_span(Duration::from_secs(2), |s| s.name == "GET /")
        .expect("span flushed at shutdown");
    let resource = request.resource_spans[0].resource.as_ref().unwrap();
    assert!(matches!(
        attr(&resource.attributes, "service.name"),
        Some(any_value::Value::StringValue(s)) if s == "datapress-api-flush"
    ));
}

#[test]
fn probes_export_no_spans() {
    let receiver = Receiver::start();
    let endpoint = format!("http://{}", receiver.addr);
    // Only the shutdown flush delivers: every span is in by the time the process exits.
    let mut api = Api::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
    ]);
    let traced = |path: &str| {
        api.request(&format!(
            "GET {path} HTTP/1.1\r\nHost: t\r\n\
             traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\
             Connection: close\r\n\r\n"
        ))
    };
    for path in ["/health", "/ready", "/info"] {
        assert_eq!(traced(path).status, 200);
    }
    api.signal("TERM");
    assert_eq!(api.wait_exit(Duration::from_secs(10)).code(), Some(0));
    let mut names = Vec::new();
    while let Ok(request) = receiver.requests.recv_timeout(Duration::from_millis(500)) {
        names.extend(
            request
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
                .map(|s| s.name.clone()),
        );
    }
    assert!(names.contains(&"GET /info".to_owned()), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.contains("/health") || n.contains("/ready")),
        "{names:?}"
    );
}

#[test]
fn no_exporter_and_no_connection_without_an_endpoint() {
    // The default OTLP port, if we can hold it: a stray exporter would dial it.
    let default = TcpListener::bind("127.0.0.1:4318").ok().map(Receiver::on);
    let spare = Receiver::start();
    let mut api = Api::start(&[
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_SERVICE_NAME", "datapress-api"),
    ]);
    assert_eq!(api.get("/info").json()["telemetry"]["traces"], false);
    let res = api.request(
        "GET / HTTP/1.1\r\nHost: t\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(res.status, 200);

    // No batch-export thread and no OTLP client exist in the process.
    let tasks = std::fs::read_dir(format!("/proc/{}/task", api.child.id())).unwrap();
    for task in tasks {
        let comm = std::fs::read_to_string(task.unwrap().path().join("comm")).unwrap();
        // Thread names are cut at 15 bytes: "OpenTelemetry.T", "reqwest-interna".
        assert!(!comm.starts_with("OpenTelemetry"), "exporter thread {comm}");
        assert!(
            !comm.starts_with("reqwest"),
            "exporter HTTP client thread {comm}"
        );
    }
    api.signal("TERM");
    assert_eq!(api.wait_exit(Duration::from_secs(5)).code(), Some(0));
    if let Some(default) = default {
        assert!(
            default.connections.try_recv().is_err(),
            "dialled 127.0.0.1:4318"
        );
    }
    assert!(spare.connections.try_recv().is_err());
    let logs = api.logs().join("\n");
    assert!(!logs.contains("trace_id"), "{logs}");
    assert!(!logs.contains("exporting traces"), "{logs}");
}
