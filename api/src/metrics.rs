//! The metrics listener: `GET /metrics` in the Prometheus text format, on its own port
//! so the public front never exposes it.

use prometheus::{Encoder, TextEncoder};
use salvo::http::header::{self, HeaderValue};
use salvo::prelude::*;

struct Scrape(prometheus::Registry);

#[handler]
impl Scrape {
    async fn handle(&self, res: &mut Response) {
        let encoder = TextEncoder::new();
        let mut body = Vec::with_capacity(16 * 1024);
        match encoder.encode(&self.0.gather(), &mut body) {
            Ok(()) => {
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                res.body(body);
            }
            Err(e) => {
                tracing::error!(error = %e, "metrics: encoding failed");
                res.status_code(StatusCode::INTERNAL_SERVER_ERROR);
            }
        }
    }
}

pub fn service(registry: prometheus::Registry) -> Service {
    Service::new(Router::with_path("metrics").get(Scrape(registry)))
        .catcher(crate::routes::json_catcher())
}
