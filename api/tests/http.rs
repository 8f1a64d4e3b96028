//! The public listener, end to end against the real binary.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Api, get, read_response, request};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Every JSON answer is rendered by salvo's `Json`, with its content type.
fn assert_json(res: &common::Response) {
    assert_eq!(
        res.header("content-type"),
        Some("application/json; charset=utf-8"),
        "{res:?}"
    );
}

#[test]
fn root_reports_identity_and_a_microsecond_utc_timestamp() {
    let api = Api::start(&[("APP_ENV", "recette")]);
    let res = api.get("/");
    assert_eq!(res.status, 200);
    assert_json(&res);
    let body = res.json();
    let obj = body.as_object().unwrap();
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 5, "{body}");
    assert_eq!(body["service"], "api");
    assert_eq!(body["env"], "recette");
    assert_eq!(body["version"], VERSION);
    assert_eq!(body["version"], "1.0.0");
    let revision = body["revision"].as_str().unwrap();
    assert_eq!(
        revision,
        option_env!("DATAPRESS_REVISION").unwrap_or("unknown")
    );
    // 2026-11-25T09:09:57.620150Z: RFC 3339, UTC, microseconds, Z.
    let ts = body["ts"].as_str().unwrap();
    assert_eq!(ts.len(), 27, "{ts}");
    assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{ts}");
    let parsed = chrono::DateTime::parse_from_rfc3339(ts).unwrap();
    let age = chrono::Utc::now().signed_duration_since(parsed);
    assert!(age.num_seconds().abs() < 5, "{ts}");
}

#[test]
fn probes_and_info() {
    let api = Api::start(&[("APP_BANNER", "Recette du lundi"), ("DB_PASSWORD", "pw")]);
    let res = api.get("/health");
    assert_eq!(
        (res.status, res.text().as_str()),
        (200, r#"{"status":"ok"}"#)
    );
    assert_json(&res);
    let res = api.get("/ready");
    assert_eq!(
        (res.status, res.text().as_str()),
        (200, r#"{"status":"ready"}"#)
    );
    assert_json(&res);

    let res = api.get("/info");
    assert_eq!(res.status, 200);
    assert_json(&res);
    let info = res.json();
    assert_eq!(info["env"], "dev");
    assert_eq!(info["banner"], "Recette du lundi");
    assert_eq!(info["version"], VERSION);
    assert_eq!(info["db_password"], "set");
    assert_eq!(info["listen"], api.addr.to_string());
    assert_eq!(info["metrics_listen"], api.metrics_addr.to_string());
    assert_eq!(info["telemetry"]["traces"], false);
    assert_eq!(info["telemetry"]["metrics"], true);

    let unset = Api::start(&[]);
    assert_eq!(unset.get("/info").json()["db_password"], "unset");
}

#[test]
fn head_is_answered_without_a_body() {
    let api = Api::start(&[]);
    let res = api.request("HEAD /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(res.status, 200);
    assert!(res.body.is_empty());
}

#[test]
fn unknown_paths_and_methods_get_json_errors() {
    let api = Api::start(&[]);
    let res = api.get("/nope/x?y=1");
    assert_eq!(res.status, 404);
    assert_json(&res);
    assert_eq!(
        res.json(),
        serde_json::json!({"error": "not_found", "path": "/nope/x"})
    );

    let res = api.request("GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(res.status, 404, "metrics never on the public port");

    for (method, path) in [("POST", "/health"), ("DELETE", "/"), ("PUT", "/info")] {
        let res = api.request(&format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ));
        assert_eq!(res.status, 405, "{method} {path}");
        assert_json(&res);
        assert_eq!(res.json()["error"], "method_not_allowed");
        let allow = res.header("allow").unwrap_or_default();
        assert!(allow.contains("GET"), "Allow: {allow}");
    }
    // A body does not hide the real error.
    let res = api.request("POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}");
    assert_eq!(res.status, 405);
    let res = api.request("PUT /nope HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}");
    assert_eq!(res.status, 404);
    let res = api.get("/health");
    assert_eq!(res.status, 200);
}

#[test]
fn request_id_is_echoed_or_generated_and_logged() {
    let api = Api::start(&[]);
    let res = api.request(
        "GET /info HTTP/1.1\r\nHost: t\r\nX-Request-Id: client-id-42\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(res.header("x-request-id"), Some("client-id-42"));

    let res = api.get("/");
    let generated = res.header("x-request-id").unwrap().to_owned();
    assert_eq!(generated.len(), 32);
    let other = api.get("/").header("x-request-id").unwrap().to_owned();
    assert_ne!(generated, other);

    // A client id that is not a plain token is replaced, not echoed.
    let res = api.request(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Request-Id: has spaces {}\r\nConnection: close\r\n\r\n",
    );
    assert_ne!(res.header("x-request-id"), Some("has spaces {}"));

    api.wait_log("for client-id-42", |l| l.contains("client-id-42"));
    let line = api
        .json_logs()
        .into_iter()
        .find(|l| l["span"]["request_id"] == "client-id-42" && l["message"] == "request")
        .expect("access log line with the request id");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/info");
    assert_eq!(line["status"], 200);
    assert_eq!(line["level"], "INFO");
    assert!(line["latency_ms"].as_f64().unwrap() >= 0.0);
    api.wait_log("for the generated id", |l| l.contains(&generated));
}

#[test]
fn probes_log_at_debug_only() {
    let api = Api::start(&[]);
    api.get("/health");
    api.get("/ready");
    api.get("/info");
    api.wait_log("for /info", |l| l.contains("\"path\":\"/info\""));
    assert!(
        !api.logs()
            .iter()
            .any(|l| l.contains("\"path\":\"/health\"") || l.contains("\"path\":\"/ready\"")),
        "{:?}",
        api.logs()
    );

    let debug = Api::start(&[("RUST_LOG", "debug")]);
    debug.get("/health");
    debug.wait_log("for /health at debug", |l| {
        l.contains("\"path\":\"/health\"") && l.contains("\"DEBUG\"")
    });
}

#[test]
fn malformed_requests_are_refused_and_others_still_served() {
    let api = Api::start(&[]);
    // Garbage instead of a request line.
    // hyper answers these itself, before any handler: empty bodies, as the README says.
    let empty = |res: &common::Response| {
        assert!(res.body.is_empty(), "{res:?}");
        assert_eq!(res.header("content-length"), Some("0"));
    };
    let res = request(api.addr, b"\x16\x03\x01 not http at all\r\n\r\n").unwrap();
    assert_eq!(res.status, 400);
    assert_eq!(res.header("connection"), Some("close"));
    empty(&res);
    // A header line without a colon.
    let res = request(api.addr, b"GET / HTTP/1.1\r\nHost t\r\n\r\n").unwrap();
    assert_eq!(res.status, 400);
    empty(&res);
    // Oversized headers: 431 or a closed connection, never a hang.
    let big = "x".repeat(64 * 1024);
    let raw = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\n\r\n");
    match request(api.addr, raw.as_bytes()) {
        Ok(res) => {
            assert_eq!(res.status, 431);
            empty(&res);
        }
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
            "{e}"
        ),
    }
    // A body on a route that takes none.
    let res = api.request("GET /info HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(res.status, 413);
    assert_json(&res);
    assert_eq!(res.json()["error"], "body_not_allowed");
    let res = api.request(
        "GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    assert_eq!(res.status, 413);

    assert_eq!(api.get("/health").status, 200);
}

#[test]
fn slow_clients_are_cut_off_without_blocking_others() {
    let api = Api::start(&[("DATAPRESS_HEADER_READ_TIMEOUT_SECONDS", "1")]);
    let started = Instant::now();
    let mut slow = TcpStream::connect(api.addr).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n").unwrap();
    // Everyone else is served while the slow client dawdles.
    assert_eq!(api.get("/health").status, 200);
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = Vec::new();
    let result = slow.read_to_end(&mut buf);
    let elapsed = started.elapsed();
    assert!(
        result.is_ok()
            || result
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset)
    );
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(4),
        "cut off late: {elapsed:?}"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );

    // A connection that never sends a byte is closed on the same deadline.
    let started = Instant::now();
    let mut idle = TcpStream::connect(api.addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = idle.read_to_end(&mut Vec::new());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(api.get("/health").status, 200);
}

#[test]
fn secrets_never_reach_responses_or_logs() {
    const SENTINEL: &str = "s3nt1nel-db-password";
    let api = Api::start(&[("DB_PASSWORD", SENTINEL), ("RUST_LOG", "trace")]);
    for path in ["/", "/health", "/ready", "/info", "/missing"] {
        let res = get(api.addr, path);
        assert!(!res.text().contains(SENTINEL));
        assert!(res.headers.values().all(|v| !v.contains(SENTINEL)));
    }
    api.wait_log("for /missing", |l| l.contains("/missing"));
    assert!(!api.logs().iter().any(|l| l.contains(SENTINEL)));

    let out = common::run(&["check-config"], &[("DB_PASSWORD", SENTINEL)]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains(SENTINEL), "{stdout}");
    assert!(stdout.contains("[redacted]"), "{stdout}");
}

#[test]
fn read_response_helper_handles_keep_alive() {
    let api = Api::start(&[]);
    let mut conn = TcpStream::connect(api.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for _ in 0..3 {
        conn.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut conn).unwrap().status, 200);
    }
}

#[test]
fn a_panicking_handler_answers_500_json_is_logged_counted_and_the_server_keeps_serving() {
    let api = Api::start(&[("DATAPRESS_TEST_PANIC_ROUTE", "1")]);
    let res = api.request(
        "GET /test-panic HTTP/1.1\r\nHost: t\r\nX-Request-Id: panic-1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(res.status, 500);
    assert_json(&res);
    assert_eq!(res.json()["error"], "internal_server_error");
    assert_eq!(api.get("/health").status, 200, "still serving");

    api.wait_log("for the panic", |l| l.contains("test-panic route"));
    let logs = api.json_logs();
    let panic = logs
        .iter()
        .find(|l| l["message"] == "panic")
        .unwrap_or_else(|| panic!("{logs:?}"));
    assert_eq!(panic["level"], "ERROR");
    assert_eq!(panic["span"]["request_id"], "panic-1");
    assert!(
        panic["panic"]
            .as_str()
            .unwrap()
            .contains("test-panic route")
    );
    api.wait_log("for the access line", |l| {
        l.contains("\"message\":\"request\"") && l.contains("panic-1")
    });
    let metrics = get(api.metrics_addr, "/metrics").text();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("http_server_request_duration_seconds_count")
                && l.contains("http_route=\"/test-panic\"")
                && l.contains("http_response_status_code=\"500\"")
                && l.ends_with(" 1")
        ),
        "{metrics}"
    );
}

/// Sockets the process holds open (listeners and client connections).
fn open_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

#[test]
fn a_flood_of_idle_connections_and_slow_readers_is_bounded() {
    const MAX: usize = 16;
    let api = Api::start(&[
        ("DATAPRESS_MAX_CONNECTIONS", "16"),
        ("DATAPRESS_HEADER_READ_TIMEOUT_SECONDS", "1"),
        ("DATAPRESS_WRITE_TIMEOUT_SECONDS", "1"),
        ("DATAPRESS_IDLE_TIMEOUT_SECONDS", "2"),
        // The flood's 404s echo 8 KiB paths: not worth logging here.
        ("RUST_LOG", "warn"),
    ]);
    // May still count the start-up probe's connection, which the server closes any time
    // now: the counts below saturate at zero rather than underflow.
    let baseline = open_sockets(api.child.id());

    // Slow readers: pipelined requests for large answers (the 404 echoes an 8 KiB path),
    // never read, so the server's writes stall once the socket buffers (≈ 3 MiB on the
    // loopback) are full, and it stops reading. Each reports how its sending ended.
    let request = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "x".repeat(8 * 1024));
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let mut conn = TcpStream::connect(api.addr).unwrap();
            conn.set_write_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let request = request.clone();
            std::thread::spawn(move || {
                for _ in 0..2000 {
                    conn.write_all(request.as_bytes())?;
                }
                Ok::<_, std::io::Error>(conn)
            })
        })
        .collect();
    // Idle connections, four times the limit: they never send a byte.
    let idle: Vec<TcpStream> = (0..4 * MAX)
        .map(|_| TcpStream::connect(api.addr).unwrap())
        .collect();

    // The server holds at most MAX client connections; the rest wait in the backlog.
    let mut peak = 0;
    let flood = Instant::now();
    while flood.elapsed() < Duration::from_millis(1500) {
        peak = peak.max(open_sockets(api.child.id()).saturating_sub(baseline));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(peak <= MAX, "{peak} connections held, limit {MAX}");
    assert!(peak >= MAX / 2, "the flood reached the server: {peak}");

    // Probes are still answered: timeouts free the slots the flood holds.
    let started = Instant::now();
    let res = common::try_get(api.addr, "/health").expect("health under the flood");
    assert_eq!(res.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // A slow reader is cut (reset) once the server's writes to it stall, well before its
    // own writes would time out.
    for sending in slow {
        let end = sending.join().unwrap();
        let kind = end.as_ref().err().map(std::io::Error::kind);
        assert!(
            matches!(
                kind,
                Some(std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe)
            ),
            "slow reader not cut: {end:?}"
        );
    }
    drop(idle);
    assert_eq!(api.get("/health").status, 200);
}
