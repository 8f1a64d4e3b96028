//! Process lifecycle: exit codes, subcommands and the shutdown sequence.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{Api, read_response, run, try_get};

#[test]
fn bad_configuration_exits_2_with_one_clear_line() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("DATAPRESS_LISTEN", "nowhere")], "DATAPRESS_LISTEN"),
        (&[("DATAPRESS_LOG_FORMAT", "xml")], "DATAPRESS_LOG_FORMAT"),
        (
            &[("DB_PASSWORD_FILE", "/nonexistent/pw")],
            "DB_PASSWORD_FILE",
        ),
        (
            &[("DATAPRESS_CONFIG", "/nonexistent/c.toml")],
            "DATAPRESS_CONFIG",
        ),
    ];
    for (vars, key) in cases {
        for args in [&[][..], &["check-config"][..]] {
            let out = run(args, vars);
            assert_eq!(out.status.code(), Some(2), "{vars:?} {args:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
            assert!(stderr.contains(key), "{stderr}");
            assert!(out.stdout.is_empty(), "nothing served or printed");
        }
    }
    let out = run(&["no-such-command"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

/// Runs the binary, at most 5 s (a config that should be refused might start serving).
fn run_bounded(args: &[&str], vars: &[(&str, &str)]) -> std::process::Output {
    let mut child = common::command(vars)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

#[test]
fn values_that_cannot_work_exit_2_before_listening() {
    let port = common::free_port();
    let same = format!("127.0.0.1:{port}");
    let any = format!("0.0.0.0:{port}");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("DATAPRESS_HEADER_READ_TIMEOUT_SECONDS", "0")],
            "DATAPRESS_HEADER_READ_TIMEOUT_SECONDS",
        ),
        (
            &[
                ("DATAPRESS_LISTEN", &same),
                ("DATAPRESS_METRICS_LISTEN", &same),
            ],
            "DATAPRESS_METRICS_LISTEN",
        ),
        (
            &[
                ("DATAPRESS_LISTEN", &same),
                ("DATAPRESS_METRICS_LISTEN", &any),
            ],
            "DATAPRESS_METRICS_LISTEN",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://")],
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://:4318")],
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://bad host:4318")],
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:99999")],
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318?x=1")],
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ),
        (
            &[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://[::1:4318/v1/traces",
            )],
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ),
        (
            &[("DATAPRESS_IDLE_TIMEOUT_SECONDS", "18446744073709551615")],
            "DATAPRESS_IDLE_TIMEOUT_SECONDS",
        ),
        (
            &[("DATAPRESS_MAX_CONNECTIONS", "0")],
            "DATAPRESS_MAX_CONNECTIONS",
        ),
    ];
    for (vars, key) in cases {
        let mut vars = vars.to_vec();
        if !vars.iter().any(|(k, _)| *k == "DATAPRESS_LISTEN") {
            vars.push(("DATAPRESS_LISTEN", &same));
            vars.push(("DATAPRESS_METRICS_LISTEN", "127.0.0.1:0"));
        }
        for args in [&[][..], &["check-config"][..]] {
            let out = run_bounded(args, &vars);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{vars:?} {args:?}: {stderr}");
            assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
            assert!(stderr.contains(key), "{stderr}");
        }
    }
}

#[test]
fn bad_toml_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "env = [unclosed\n").unwrap();
    let out = run(&[], &[("DATAPRESS_CONFIG", path.to_str().unwrap())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml"));
}

#[test]
fn a_secret_of_any_type_never_reaches_stderr() {
    let dir = tempfile::tempdir().unwrap();
    for (i, value) in [
        "918273645",
        "91827.3645",
        "[\"s3cr3t-918273645\"]",
        "s3cr3t-918273645",
    ]
    .iter()
    .enumerate()
    {
        let path = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&path, format!("db_password = {value}\n")).unwrap();
        for args in [&[][..], &["check-config"][..]] {
            let out = run(args, &[("DATAPRESS_CONFIG", path.to_str().unwrap())]);
            assert_eq!(out.status.code(), Some(2), "{value} {args:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            for needle in ["918273645", "91827", "s3cr3t"] {
                assert!(!stderr.contains(needle), "{value} {args:?}: {stderr}");
            }
        }
    }
}

#[test]
fn check_config_prints_the_effective_config() {
    let out = run(
        &["check-config"],
        &[
            ("APP_ENV", "recette"),
            ("DATAPRESS_API_PORT", "tcp://10.96.0.12:80"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(config["env"], "recette");
    assert_eq!(config["listen"], "0.0.0.0:8000");
    assert_eq!(config["db_password"], serde_json::Value::Null);
}

#[test]
fn healthcheck_exit_codes() {
    let api = Api::start(&[]);
    let listen = api.addr.to_string();
    // Default URL: /health on the configured listen port.
    let out = run(&["healthcheck"], &[("DATAPRESS_LISTEN", &listen)]);
    assert!(out.status.success(), "{out:?}");
    // The probe reads the listen address only: a secret file gone unreadable since the
    // start (or any other broken setting) must not fail the liveness probe.
    let out = run(
        &["healthcheck"],
        &[
            ("DATAPRESS_LISTEN", &listen),
            ("DB_PASSWORD_FILE", "/nonexistent/secret"),
            ("DATAPRESS_LOG_FORMAT", "xml"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("c.toml");
    std::fs::write(
        &toml,
        format!("listen = \"{listen}\"\ndb_password_file = \"/nonexistent\"\n"),
    )
    .unwrap();
    let out = run(
        &["healthcheck"],
        &[("DATAPRESS_CONFIG", toml.to_str().unwrap())],
    );
    assert!(out.status.success(), "listen from the TOML file: {out:?}");
    let out = run(&["healthcheck"], &[("DATAPRESS_LISTEN", "nowhere")]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unreadable listen address is still an error"
    );
    let url = format!("http://{}/ready", api.addr);
    assert!(run(&["healthcheck", "--url", &url], &[]).status.success());
    let url = format!("http://{}/missing", api.addr);
    assert_eq!(
        run(&["healthcheck", "--url", &url], &[]).status.code(),
        Some(1)
    );
    let closed = format!("http://127.0.0.1:{}/health", common::free_port());
    assert_eq!(
        run(&["healthcheck", "--url", &closed], &[]).status.code(),
        Some(1)
    );

    // A peer that accepts but never answers fails within the 2 s budget.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/health", silent.local_addr().unwrap());
    let started = Instant::now();
    let out = run(&["healthcheck", "--url", &url], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn sigterm_drains_then_stops_without_losing_requests() {
    let mut api = Api::start(&[
        ("DATAPRESS_DRAIN_SECONDS", "2"),
        ("DATAPRESS_SHUTDOWN_TIMEOUT_SECONDS", "10"),
    ]);
    let addr = api.addr;

    // Clients keep sending requests until the load balancer would have dropped the pod
    // (well within the drain delay); every one of them must get a complete answer.
    let routed = Arc::new(AtomicBool::new(true));
    let (ok, lost) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (routed, ok, lost) = (routed.clone(), ok.clone(), lost.clone());
            thread::spawn(move || {
                while routed.load(Ordering::Relaxed) {
                    let result = TcpStream::connect(addr).and_then(|mut conn| {
                        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
                        conn.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")?;
                        read_response(&mut conn)
                    });
                    match result {
                        Ok(res) if res.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                        other => {
                            eprintln!("lost request: {other:?}");
                            lost.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();

    // An in-flight request: its head is half sent before the signal and finished after
    // the listener stopped accepting.
    let mut inflight = TcpStream::connect(addr).unwrap();
    inflight
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    inflight
        .write_all(b"GET /info HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    thread::sleep(Duration::from_millis(200));

    api.signal("TERM");
    let started = Instant::now();
    api.wait_log("draining", |l| l.contains("not ready, draining"));
    // Without `Connection: close` from the client: the `close` below is the server's own.
    let ready = common::request(addr, b"GET /ready HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(ready.status, 503);
    assert_eq!(ready.text(), r#"{"status":"draining"}"#);
    assert_eq!(ready.header("connection"), Some("close"));
    assert_eq!(
        try_get(addr, "/health").unwrap().status,
        200,
        "still live while draining"
    );

    thread::sleep(Duration::from_millis(1000));
    routed.store(false, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }

    api.wait_log("graceful stop", |l| l.contains("stopping listeners"));
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "drain delay honoured"
    );
    api.wait_log("server stop", |l| l.contains("initiate graceful stop"));
    // New connections are refused at once, not parked in a backlog.
    let refused = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    assert!(refused.is_err(), "listener closed during the graceful stop");

    inflight.write_all(b"\r\n").unwrap();
    let res = read_response(&mut inflight).expect("in-flight request completes");
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["service"], "api");

    let status = api.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{:?}", api.logs());
    assert!(ok.load(Ordering::Relaxed) > 10, "clients ran");
    assert_eq!(lost.load(Ordering::Relaxed), 0, "no request lost");
    api.wait_log("complete", |l| l.contains("shutdown: complete"));

    // Access lines are written in batches: every answered request still has its line.
    let logged = |path: &str| {
        api.json_logs()
            .iter()
            .filter(|l| l["message"] == "request" && l["path"] == path)
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while logged("/") < ok.load(Ordering::Relaxed) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        logged("/"),
        ok.load(Ordering::Relaxed),
        "one access line per answer"
    );
    assert_eq!(logged("/info"), 1, "the in-flight request's line");
}

/// Reads until the peer closes; `true` if it did within the read timeout.
fn closed_by_peer(conn: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    std::io::Read::read_to_end(conn, &mut rest).is_ok() && rest.is_empty()
}

#[test]
fn keep_alive_clients_are_closed_while_draining_and_reconnect_to_another_instance() {
    // Two instances behind one Service: A is stopped, B keeps serving.
    let mut a = Api::start(&[
        ("DATAPRESS_DRAIN_SECONDS", "2"),
        ("DATAPRESS_SHUTDOWN_TIMEOUT_SECONDS", "10"),
    ]);
    let b = Api::start(&[]);

    // Two keep-alive clients of A (no `Connection: close`), each served once.
    let connect = || {
        let mut conn = TcpStream::connect(a.addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        conn.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let res = read_response(&mut conn).unwrap();
        assert_eq!((res.status, res.header("connection")), (200, None));
        conn
    };
    let (mut in_flight, mut idle) = (connect(), connect());
    // The first one's next request is in flight at SIGTERM: its head is half sent.
    in_flight
        .write_all(b"GET /info HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    thread::sleep(Duration::from_millis(100));
    a.signal("TERM");

    // During the drain delay the server answers it, asks it to close (our middleware, not
    // an echo of the client's header) and closes the connection after the answer.
    a.wait_log("draining", |l| l.contains("not ready, draining"));
    in_flight.write_all(b"\r\n").unwrap();
    let res = read_response(&mut in_flight).unwrap();
    assert_eq!((res.status, res.header("connection")), (200, Some("close")));
    assert!(closed_by_peer(&mut in_flight), "closed after the answer");

    // A kept-alive client that stayed idle through the drain is closed by the graceful
    // stop (hyper closes idle connections), so it does not wait on a dying server.
    a.wait_log("graceful stop", |l| l.contains("initiate graceful stop"));
    assert!(
        closed_by_peer(&mut idle),
        "idle keep-alive connection closed"
    );

    // The clients reconnect; the Service now sends them to B, which keeps them alive.
    let mut conn = TcpStream::connect(b.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for _ in 0..2 {
        conn.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let res = read_response(&mut conn).unwrap();
        assert_eq!((res.status, res.header("connection")), (200, None));
    }
    assert_eq!(
        a.wait_exit(Duration::from_secs(5)).code(),
        Some(0),
        "{:?}",
        a.logs()
    );
}

#[test]
fn sigint_runs_the_same_sequence() {
    let mut api = Api::start(&[]);
    api.signal("INT");
    let status = api.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
    assert!(api.logs().iter().any(|l| l.contains("not ready, draining")));
}

#[test]
fn the_deadline_bounds_a_stuck_client() {
    let mut api = Api::start(&[("DATAPRESS_SHUTDOWN_TIMEOUT_SECONDS", "1")]);
    // A request that never finishes its headers keeps its connection busy.
    let mut stuck = TcpStream::connect(api.addr).unwrap();
    stuck.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n").unwrap();
    thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    api.signal("TERM");
    let status = api.wait_exit(Duration::from_secs(5));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // A missed deadline is not a clean stop: non-zero exit, a warning with the count.
    assert_eq!(status.code(), Some(1), "{:?}", api.logs());
    api.wait_log("deadline warning", |l| l.contains("connections_cut"));
    let logs = api.json_logs();
    let warning = logs
        .iter()
        .find(|l| l.get("connections_cut").is_some())
        .unwrap();
    assert_eq!(warning["level"], "WARN");
    assert_eq!(warning["connections_cut"], 1, "{warning}");
    assert!(
        !logs.iter().any(|l| l["message"] == "shutdown: complete"),
        "{logs:?}"
    );
    assert!(
        api.logs().iter().any(|l| l.contains("1 connection(s) cut")),
        "stderr names it: {:?}",
        api.logs()
    );
}

#[test]
fn a_second_signal_forces_the_exit() {
    let mut api = Api::start(&[("DATAPRESS_DRAIN_SECONDS", "30")]);
    api.signal("TERM");
    api.wait_log("draining", |l| l.contains("not ready, draining"));
    let started = Instant::now();
    api.signal("TERM");
    let status = api.wait_exit(Duration::from_secs(5));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(status.code(), Some(1), "forced: {status:?}");
    assert!(status.signal().is_none());
}

#[test]
fn a_busy_port_exits_1_naming_the_listener() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let metrics = format!("127.0.0.1:{}", common::free_port());
    let out = run(
        &[],
        &[
            ("DATAPRESS_LISTEN", &addr),
            ("DATAPRESS_METRICS_LISTEN", &metrics),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DATAPRESS_LISTEN") && stderr.contains(&addr),
        "{stderr}"
    );
}

#[test]
fn release_builds_unwind_on_panic() {
    // `panic = "abort"` would kill every in-flight request and the process with one panic.
    let manifest = include_str!("../../Cargo.toml");
    let release = manifest
        .split("[profile.release]")
        .nth(1)
        .expect("a release profile")
        .split("\n[")
        .next()
        .unwrap();
    assert!(
        !release.lines().any(|l| l.trim_start().starts_with("panic")),
        "{release}"
    );
}
