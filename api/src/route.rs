//! What a request matched, as logs, metrics and traces label it: the route template (never
//! the requested path, so labels stay bounded) and whether it is a probe.

use std::fmt;

use salvo::http::StatusCode;
use salvo::prelude::Request;

/// Paths polled by orchestrators many times a minute: logged at debug level, not traced.
pub fn is_probe(path: &str) -> bool {
    matches!(path, "/health" | "/ready")
}

/// The matched route template, shown `-` when none matched; salvo leaves the matched path
/// empty for `/`, so the root is told apart by its status.
pub struct Route<'a> {
    matched: &'a str,
    found: bool,
}

impl<'a> Route<'a> {
    pub fn of(req: &'a Request, status: StatusCode) -> Self {
        let matched = req.matched_path();
        let root = req.uri().path() == "/"
            && status != StatusCode::NOT_FOUND
            && status != StatusCode::METHOD_NOT_ALLOWED;
        Self {
            matched,
            found: !matched.is_empty() || root,
        }
    }

    /// `/health`, `/`…, or `None` when no route matched.
    pub fn template(&self) -> Option<String> {
        self.found.then(|| self.to_string())
    }
}

impl fmt::Display for Route<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.found {
            write!(f, "/{}", self.matched)
        } else {
            f.write_str("-")
        }
    }
}
