//! `datapress-api healthcheck`: the images have no shell or curl, so the binary probes
//! itself with a minimal HTTP/1.1 GET.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Whole probe budget: connect, send, and read the status line.
pub const TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum HealthcheckError {
    #[error("unsupported URL `{0}` (expected http://host[:port][/path])")]
    BadUrl(String),
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("cannot reach {addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("malformed HTTP response")]
    Malformed,
    #[error("unhealthy: HTTP {0}")]
    Status(u16),
}

struct Target<'a> {
    host: &'a str,
    port: u16,
    path: &'a str,
}

fn parse(url: &str) -> Result<Target<'_>, HealthcheckError> {
    let bad = || HealthcheckError::BadUrl(url.to_owned());
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    // `[v6]` or `[v6]:port`; otherwise `host` or `host:port`.
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let end = v6.find(']').ok_or_else(bad)? + 2;
            match &authority[end..] {
                "" => (&authority[..end], None),
                rest => (
                    &authority[..end],
                    Some(rest.strip_prefix(':').ok_or_else(bad)?),
                ),
            }
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = port.map_or(Ok(80), str::parse).map_err(|_| bad())?;
    if host.is_empty() || host == "[]" {
        return Err(bad());
    }
    Ok(Target { host, port, path })
}

/// Probes `url`; `Ok` only for a 2xx answer within [`TIMEOUT`].
pub fn probe(url: &str) -> Result<u16, HealthcheckError> {
    let deadline = Instant::now() + TIMEOUT;
    let target = parse(url)?;
    let host = target.host.trim_start_matches('[').trim_end_matches(']');
    let lookup = {
        let (host, port) = (host.to_owned(), target.port);
        move || {
            (host.as_str(), port)
                .to_socket_addrs()
                .map(Iterator::collect)
        }
    };
    let addrs = resolve(lookup, deadline).map_err(|e| match e.kind() {
        std::io::ErrorKind::TimedOut => HealthcheckError::Timeout(TIMEOUT),
        _ => HealthcheckError::Resolve(target.host.to_owned()),
    })?;
    let remaining = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(HealthcheckError::Timeout(TIMEOUT))
    };
    let io = |source: std::io::Error| {
        if matches!(
            source.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) {
            HealthcheckError::Timeout(TIMEOUT)
        } else {
            HealthcheckError::Io {
                addr: format!("{}:{}", target.host, target.port),
                source,
            }
        }
    };
    let mut last = HealthcheckError::Resolve(target.host.to_owned());
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, remaining()?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = io(e),
        }
    }
    let mut stream = stream.ok_or(last)?;
    stream.set_write_timeout(Some(remaining()?)).map_err(io)?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: datapress-healthcheck\r\nConnection: close\r\n\r\n",
        target.path, target.host, target.port
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 64];
    while !head.windows(2).any(|w| w == b"\r\n") {
        stream.set_read_timeout(Some(remaining()?)).map_err(io)?;
        let n = stream.read(&mut buf).map_err(io)?;
        if n == 0 || head.len() > 1024 {
            return Err(HealthcheckError::Malformed);
        }
        head.extend_from_slice(&buf[..n]);
    }
    let status = status_code(&head).ok_or(HealthcheckError::Malformed)?;
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(HealthcheckError::Status(status))
    }
}

/// Runs the name lookup on its own thread, so a slow resolver counts against the budget
/// (`getaddrinfo` has no timeout); a lookup still running at the deadline is abandoned.
fn resolve<F>(lookup: F, deadline: Instant) -> std::io::Result<Vec<SocketAddr>>
where
    F: FnOnce() -> std::io::Result<Vec<SocketAddr>> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(lookup()));
    let left = deadline.saturating_duration_since(Instant::now());
    rx.recv_timeout(left)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// `HTTP/1.1 200 OK` → 200.
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let t = parse("http://127.0.0.1:8080/healthz").unwrap();
        assert_eq!((t.host, t.port, t.path), ("127.0.0.1", 8080, "/healthz"));
        let t = parse("http://api").unwrap();
        assert_eq!((t.host, t.port, t.path), ("api", 80, "/"));
        let t = parse("http://[::1]:9000/metrics").unwrap();
        assert_eq!((t.host, t.port, t.path), ("[::1]", 9000, "/metrics"));
        assert!(parse("https://x/").is_err());
        assert!(parse("http://:80/").is_err());
    }

    #[test]
    fn a_bracketed_ipv6_host_without_port_gets_port_80() {
        let t = parse("http://[::1]/health").unwrap();
        assert_eq!((t.host, t.port, t.path), ("[::1]", 80, "/health"));
        let t = parse("http://[::1]").unwrap();
        assert_eq!((t.host, t.port, t.path), ("[::1]", 80, "/"));
        assert!(parse("http://[::1]:x/").is_err());
        assert!(parse("http://[::1/").is_err());
    }

    #[test]
    fn a_slow_name_lookup_stays_within_the_budget() {
        let started = Instant::now();
        let slow = || {
            std::thread::sleep(Duration::from_secs(3));
            Ok(vec![])
        };
        let result = resolve(slow, started + Duration::from_millis(200));
        assert!(result.is_err());
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn reads_status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(status_code(b"garbage\r\n"), None);
    }
}
