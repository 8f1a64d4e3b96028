//! Effective configuration: built-in defaults < TOML file (`DATAPRESS_CONFIG`) < environment.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Environment variable naming the optional TOML file.
pub const CONFIG_FILE_VAR: &str = "DATAPRESS_CONFIG";

/// Every environment variable the service reads, and the config key it sets.
/// Anything else (e.g. Kubernetes service links such as `DATAPRESS_API_PORT`) is ignored.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("APP_ENV", "env"),
    ("APP_BANNER", "banner"),
    ("DB_PASSWORD", "db_password"),
    ("DB_PASSWORD_FILE", "db_password_file"),
    ("DATAPRESS_LISTEN", "listen"),
    ("DATAPRESS_METRICS_LISTEN", "metrics_listen"),
    ("DATAPRESS_DRAIN_SECONDS", "drain_seconds"),
    (
        "DATAPRESS_SHUTDOWN_TIMEOUT_SECONDS",
        "shutdown_timeout_seconds",
    ),
    (
        "DATAPRESS_HEADER_READ_TIMEOUT_SECONDS",
        "header_read_timeout_seconds",
    ),
    ("DATAPRESS_LOG_FORMAT", "log_format"),
    ("RUST_LOG", "log_level"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "otel.endpoint"),
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "otel.traces_endpoint"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "otel.protocol"),
    ("OTEL_SERVICE_NAME", "otel.service_name"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OtlpProtocol {
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    #[serde(rename = "grpc")]
    Grpc,
}

/// OpenTelemetry settings, named after the standard `OTEL_*` variables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtelConfig {
    /// Base OTLP endpoint; traces are exported only when this or `traces_endpoint` is set.
    pub endpoint: Option<String>,
    /// Full URL for traces, used as is (wins over `endpoint`).
    pub traces_endpoint: Option<String>,
    pub protocol: OtlpProtocol,
    pub service_name: String,
}

impl Default for OtelConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            traces_endpoint: None,
            protocol: OtlpProtocol::HttpProtobuf,
            service_name: "datapress-api".into(),
        }
    }
}

impl OtelConfig {
    /// The URL spans are sent to, or `None` when tracing export is off.
    pub fn traces_url(&self) -> Option<String> {
        if let Some(url) = &self.traces_endpoint {
            return Some(url.clone());
        }
        let base = self.endpoint.as_deref()?;
        Some(match self.protocol {
            // The OTLP spec: the signal path is appended to the base endpoint for HTTP only.
            OtlpProtocol::HttpProtobuf => format!("{}/v1/traces", base.trim_end_matches('/')),
            OtlpProtocol::Grpc => base.to_owned(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub env: String,
    pub banner: String,
    pub db_password: Option<Secret>,
    pub db_password_file: Option<PathBuf>,
    pub listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    pub drain_seconds: u64,
    pub shutdown_timeout_seconds: u64,
    pub header_read_timeout_seconds: u64,
    pub log_format: LogFormat,
    pub log_level: String,
    pub otel: OtelConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            env: "dev".into(),
            banner: "DataPress".into(),
            db_password: None,
            db_password_file: None,
            listen: SocketAddr::from(([0, 0, 0, 0], 8000)),
            metrics_listen: SocketAddr::from(([0, 0, 0, 0], 9000)),
            drain_seconds: 5,
            shutdown_timeout_seconds: 20,
            header_read_timeout_seconds: 10,
            log_format: LogFormat::Json,
            log_level: "info".into(),
            otel: OtelConfig::default(),
        }
    }
}

/// Why the configuration is unusable; `main` prints it on one line and exits 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {CONFIG_FILE_VAR}={path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("invalid configuration: key `{key}` (from {origin}): {reason}")]
    Value {
        key: String,
        origin: String,
        reason: String,
    },
}

impl Config {
    /// Loads the configuration from the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_from(std::env::vars())
    }

    /// Loads the configuration from the given environment (tests feed their own).
    pub fn load_from<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let mut figment = Figment::new();
        if let Some(path) = vars.get(CONFIG_FILE_VAR).filter(|p| !p.is_empty()) {
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(ConfigError::File {
                    path,
                    reason: "no such file".into(),
                });
            }
            figment = figment.merge(Toml::file_exact(&path));
        }
        let figment = figment.merge(EnvVars::new(&vars));
        let mut config: Config = figment.extract_lossy().map_err(from_figment)?;
        config.resolve_password_file(&figment)?;
        config.validate(&figment)?;
        Ok(config)
    }

    /// `DB_PASSWORD_FILE` (Docker/Kubernetes secrets convention) wins over `DB_PASSWORD`.
    fn resolve_password_file(&mut self, figment: &Figment) -> Result<(), ConfigError> {
        let Some(path) = &self.db_password_file else {
            return Ok(());
        };
        let content = std::fs::read_to_string(path).map_err(|e| ConfigError::Value {
            key: "db_password_file".into(),
            origin: origin_of(figment, "db_password_file"),
            reason: format!("cannot read {}: {e}", path.display()),
        })?;
        let value = content.trim_end_matches(['\r', '\n']);
        self.db_password = (!value.is_empty()).then(|| Secret::new(value));
        Ok(())
    }

    fn validate(&self, figment: &Figment) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Value {
            key: key.into(),
            origin: origin_of(figment, key),
            reason,
        };
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&self.log_level) {
            return Err(invalid("log_level", format!("invalid log filter: {e}")));
        }
        for (key, url) in [
            ("otel.endpoint", &self.otel.endpoint),
            ("otel.traces_endpoint", &self.otel.traces_endpoint),
        ] {
            if let Some(url) = url
                && !url.starts_with("http://")
            {
                return Err(invalid(
                    key,
                    format!("`{url}` is not an http:// URL (this build exports OTLP without TLS)"),
                ));
            }
        }
        if self.shutdown_timeout_seconds == 0 {
            return Err(invalid(
                "shutdown_timeout_seconds",
                "must be at least 1".into(),
            ));
        }
        Ok(())
    }

    pub fn drain_delay(&self) -> Duration {
        Duration::from_secs(self.drain_seconds)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_seconds)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_seconds)
    }

    pub fn traces_enabled(&self) -> bool {
        self.otel.traces_url().is_some()
    }
}

/// The known environment variables as a figment provider; values stay strings so a
/// banner such as `123` or `[beta]` is never reinterpreted, numbers parse at extraction.
struct EnvVars {
    values: Vec<(&'static str, String)>,
}

impl EnvVars {
    fn new(vars: &HashMap<String, String>) -> Self {
        let values = ENV_VARS
            .iter()
            .filter_map(|(name, key)| {
                let value = vars.get(*name)?;
                // An empty variable (`FOO=` from a compose `${FOO:-}`) means "not set".
                (!value.is_empty()).then(|| (*key, value.clone()))
            })
            .collect();
        Self { values }
    }
}

impl Provider for EnvVars {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment").interpolater(|_: &Profile, keys: &[&str]| {
            let key = keys.join(".");
            ENV_VARS
                .iter()
                .find(|(_, k)| *k == key)
                .map_or(key.clone(), |(name, _)| (*name).to_owned())
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut root = Dict::new();
        for (key, value) in &self.values {
            let path: Vec<&str> = key.split('.').collect();
            insert_path(&mut root, &path, Value::from(value.clone()));
        }
        Ok(Map::from([(Profile::Default, root)]))
    }
}

/// Inserts `value` under a dotted key (`otel.endpoint`), creating the tables on the way.
fn insert_path(dict: &mut Dict, path: &[&str], value: Value) {
    match path {
        [] => {}
        [leaf] => {
            dict.insert((*leaf).to_owned(), value);
        }
        [head, rest @ ..] => {
            let entry = dict
                .entry((*head).to_owned())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

/// Where a key's value came from, in words an operator can act on.
fn origin_of(figment: &Figment, key: &str) -> String {
    match figment.find_metadata(key) {
        Some(meta) => describe(meta, key),
        None => "built-in defaults".into(),
    }
}

fn describe(meta: &Metadata, key: &str) -> String {
    let keys: Vec<&str> = key.split('.').collect();
    if meta.name == "environment" {
        return format!(
            "environment variable {}",
            meta.interpolate(&Profile::Default, &keys)
        );
    }
    match &meta.source {
        Some(figment::Source::File(path)) => format!("TOML file {}", path.display()),
        _ => meta.name.to_string(),
    }
}

fn from_figment(error: figment::Error) -> ConfigError {
    let mut key = error.path.join(".");
    if let figment::error::Kind::UnknownField(field, _) = &error.kind {
        key = if key.is_empty() {
            field.clone()
        } else {
            format!("{key}.{field}")
        };
    }
    let origin = error
        .metadata
        .as_ref()
        .map_or_else(|| "built-in defaults".into(), |m| describe(m, &key));
    if key.is_empty() {
        // A file-level failure (unparsable TOML) carries no key.
        if let Some(Some(figment::Source::File(path))) = error.metadata.as_ref().map(|m| &m.source)
        {
            return ConfigError::File {
                path: path.clone(),
                reason: one_line(&error.kind.to_string()),
            };
        }
    }
    ConfigError::Value {
        key: if key.is_empty() { "<root>".into() } else { key },
        origin,
        reason: one_line(&error.kind.to_string()),
    }
}

/// Parser messages (TOML) span several lines; keep the position and the cause.
fn one_line(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.contains(" | "))
        .collect();
    match lines.as_slice() {
        [] => String::new(),
        [only] => (*only).to_owned(),
        [first, .., last] => format!("{first}: {last}"),
    }
}

/// The address a local probe should use to reach a listener bound to `addr`.
pub fn local_probe_addr(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => std::net::Ipv4Addr::LOCALHOST.into(),
        ip if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}
