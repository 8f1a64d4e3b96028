//! The same routes as the API with nothing around them (no logs, metrics nor request
//! ids), so the bench shows what our middleware costs over the framework itself.

use chrono::{SecondsFormat, Utc};
use salvo::prelude::*;
use serde::Serialize;

#[derive(Serialize)]
struct Root {
    service: &'static str,
    ts: String,
    env: &'static str,
    version: &'static str,
    revision: &'static str,
}

#[derive(Serialize)]
struct Status {
    status: &'static str,
}

#[handler]
async fn root(res: &mut Response) {
    res.render(Json(Root {
        service: "api",
        ts: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
        env: "bench",
        version: env!("CARGO_PKG_VERSION"),
        revision: "unknown",
    }));
}

#[handler]
async fn health(res: &mut Response) {
    res.render(Json(Status { status: "ok" }));
}

fn router() -> Router {
    Router::new()
        .get(root)
        .push(Router::with_path("health").get(health))
}

// One tokio worker per core: the bench pins the process with taskset, so the default
// multi-thread runtime sizes itself from the affinity mask.
#[tokio::main]
async fn main() {
    let listen = std::env::var("DATAPRESS_LISTEN").unwrap_or_else(|_| "127.0.0.1:8000".into());
    let acceptor = TcpListener::new(listen).bind().await;
    Server::new(acceptor).serve(router()).await;
}

#[cfg(test)]
mod tests {
    use salvo::test::{ResponseExt, TestClient};

    use super::*;

    #[tokio::test]
    async fn answers_the_api_routes() {
        let service = Service::new(router());
        let health_body = TestClient::get("http://127.0.0.1/health")
            .send(&service)
            .await
            .take_string()
            .await
            .unwrap();
        assert_eq!(health_body, r#"{"status":"ok"}"#);
        let body = TestClient::get("http://127.0.0.1/")
            .send(&service)
            .await
            .take_string()
            .await
            .unwrap();
        assert!(body.starts_with(r#"{"service":"api","ts":""#), "{body}");
    }
}
