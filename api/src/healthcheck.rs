//! `datapress-api healthcheck`: the images have no shell or curl, so the binary probes
//! itself, with the HTTP client already in the build (reqwest, used by the OTLP exporter).

use std::time::Duration;

/// Whole probe budget: name lookup, connect, send, and the answer.
pub const TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum HealthcheckError {
    #[error("unsupported URL `{0}` (expected http://host[:port][/path])")]
    BadUrl(String),
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("unhealthy: HTTP {0}")]
    Status(u16),
}

/// Probes `url`; `Ok` only for a 2xx answer within [`TIMEOUT`]. No proxy from the
/// environment and no redirect: the probe talks to this process only.
pub fn probe(url: &str) -> Result<u16, HealthcheckError> {
    if !url.starts_with("http://") {
        return Err(HealthcheckError::BadUrl(url.to_owned()));
    }
    let client = reqwest::blocking::Client::builder()
        .timeout(TIMEOUT)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("datapress-healthcheck")
        .build()?;
    let status = client.get(url).send()?.status().as_u16();
    match status {
        200..300 => Ok(status),
        _ => Err(HealthcheckError::Status(status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_are_probed() {
        assert!(matches!(
            probe("https://x/"),
            Err(HealthcheckError::BadUrl(_))
        ));
        assert!(matches!(
            probe("http://:80/"),
            Err(HealthcheckError::Http(_))
        ));
        assert!(matches!(
            probe("http://[::1]:x/"),
            Err(HealthcheckError::Http(_))
        ));
    }

    #[test]
    fn a_bracketed_ipv6_host_without_port_is_accepted() {
        // Whatever listens on [::1]:80 here, the URL itself must not be refused.
        match probe("http://[::1]/health") {
            Ok(_) | Err(HealthcheckError::Status(_)) => {}
            Err(HealthcheckError::Http(e)) => assert!(!e.is_builder(), "{e:?}"),
            Err(e) => panic!("{e}"),
        }
    }
}
