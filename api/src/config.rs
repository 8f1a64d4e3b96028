//! Effective configuration: built-in defaults < TOML file (`DATAPRESS_CONFIG`) < environment.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

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
    ("DATAPRESS_WRITE_TIMEOUT_SECONDS", "write_timeout_seconds"),
    ("DATAPRESS_IDLE_TIMEOUT_SECONDS", "idle_timeout_seconds"),
    ("DATAPRESS_MAX_CONNECTIONS", "max_connections"),
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

/// The OTLP transport. Only `http/protobuf` is built in: gRPC would pull tonic, tower and
/// prost for a transport no deployment uses; asking for it is a configuration error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OtlpProtocol {
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
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
        // The OTLP spec: over HTTP, the signal path is appended to the base endpoint.
        Some(format!("{}/v1/traces", base.trim_end_matches('/')))
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
    pub write_timeout_seconds: u64,
    pub idle_timeout_seconds: u64,
    pub max_connections: usize,
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
            write_timeout_seconds: 10,
            // Longer than NGINX's upstream keep-alive (60 s), so the proxy closes first.
            idle_timeout_seconds: 75,
            max_connections: 1024,
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
        let figment = layers(vars)?;
        let mut config: Config = figment.extract_lossy().map_err(from_figment)?;
        config.resolve_password(&figment)?;
        config.validate(&figment)?;
        Ok(config)
    }

    /// The public listen address alone (the liveness probe needs nothing else): the other
    /// keys are neither read nor checked, so a secret file gone unreadable cannot fail it.
    pub fn load_listen() -> Result<SocketAddr, ConfigError> {
        let figment = layers(std::env::vars())?;
        if figment.find_value("listen").is_err() {
            return Ok(Self::default().listen);
        }
        figment.extract_inner_lossy("listen").map_err(from_figment)
    }

    /// The password comes from the strongest layer that gives one (environment over TOML
    /// file), as a value or as a file to read (Docker/Kubernetes secrets); one layer giving
    /// both is ambiguous, and an empty file is a mistake, not "no password".
    fn resolve_password(&mut self, figment: &Figment) -> Result<(), ConfigError> {
        let layer = |key: &str| {
            figment
                .find_metadata(key)
                .map_or(0, |m| if m.name == "environment" { 2 } else { 1 })
        };
        let (value, file) = (layer("db_password"), layer("db_password_file"));
        let Some(path) = self.db_password_file.take() else {
            return Ok(());
        };
        if self.db_password.is_some() {
            if value == file {
                return Err(ConfigError::Value {
                    key: "db_password".into(),
                    origin: origin_of(figment, "db_password"),
                    reason: "db_password and db_password_file are both set here; keep one".into(),
                });
            }
            if value > file {
                return Ok(());
            }
        }
        let invalid = |reason: String| ConfigError::Value {
            key: "db_password_file".into(),
            origin: origin_of(figment, "db_password_file"),
            reason,
        };
        let content = std::fs::read_to_string(&path)
            .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
        let password = content.trim_end_matches(['\r', '\n']);
        if password.is_empty() {
            return Err(invalid(format!("{} is empty", path.display())));
        }
        self.db_password = Some(Secret::new(password));
        self.db_password_file = Some(path);
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
        // The URL the exporter will parse, blamed on the key it comes from.
        if let Some(url) = self.otel.traces_url() {
            let (key, base) = match self.otel.traces_endpoint {
                Some(_) => ("otel.traces_endpoint", false),
                None => ("otel.endpoint", true),
            };
            check_otlp_url(&url, base).map_err(|e| invalid(key, e))?;
        }
        // Upper bounds keep every deadline (`now + timeout`) representable.
        let seconds = [
            ("drain_seconds", self.drain_seconds, 0),
            ("shutdown_timeout_seconds", self.shutdown_timeout_seconds, 1),
            (
                "header_read_timeout_seconds",
                self.header_read_timeout_seconds,
                1,
            ),
            ("write_timeout_seconds", self.write_timeout_seconds, 1),
            ("idle_timeout_seconds", self.idle_timeout_seconds, 1),
        ];
        let limits = seconds.map(|(key, value, min)| (key, value, min, MAX_SECONDS));
        let connections = (
            "max_connections",
            self.max_connections as u64,
            1,
            MAX_CONNECTIONS,
        );
        for (key, value, min, max) in limits.into_iter().chain([connections]) {
            if !(min..=max).contains(&value) {
                return Err(invalid(key, format!("must be between {min} and {max}")));
            }
        }
        if overlap(self.listen, self.metrics_listen) {
            let reason = format!("port {} is already the public port", self.listen.port());
            return Err(invalid("metrics_listen", reason));
        }
        Ok(())
    }

    pub fn traces_enabled(&self) -> bool {
        self.otel.traces_url().is_some()
    }
}

/// Defaults < TOML file (`DATAPRESS_CONFIG`, if set) < the known environment variables.
fn layers<I, K, V>(vars: I) -> Result<Figment, ConfigError>
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
    Ok(figment.merge(EnvVars::new(&vars)))
}

/// Largest accepted duration setting (one hour).
const MAX_SECONDS: u64 = 3600;
const MAX_CONNECTIONS: u64 = 65_536;

/// Two listeners collide on one port when their addresses are equal or one is a wildcard.
fn overlap(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// An OTLP traces URL the exporter will accept: `http://host[:port][/path]`; `base`: the
/// URL was built by appending `/v1/traces` to the endpoint, which a query string breaks.
/// The value is not echoed: a URL may carry credentials.
fn check_otlp_url(url: &str, base: bool) -> Result<(), String> {
    let uri: salvo::http::uri::Uri = url.parse().map_err(|e| format!("not a valid URL ({e})"))?;
    if uri.scheme_str() != Some("http") {
        return Err("not an http:// URL (this build exports OTLP without TLS)".into());
    }
    let authority = uri.authority().map_or("", |a| a.as_str());
    let host = uri.host().unwrap_or("");
    if host.is_empty() || host == "[]" || authority.contains('@') {
        return Err("a host (and no credentials: use OTEL_EXPORTER_OTLP_HEADERS) is needed".into());
    }
    let port = &authority[host.len()..];
    if !port.is_empty()
        && port
            .strip_prefix(':')
            .and_then(|p| p.parse::<u16>().ok())
            .is_none()
    {
        return Err("invalid port".into());
    }
    if base && uri.query().is_some() {
        return Err("a query string cannot be followed by /v1/traces".into());
    }
    Ok(())
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
    if let figment::error::Kind::UnknownField(field, _) = &error.kind
        && error.path.last() != Some(field)
    {
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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load_from(vars.iter().map(|(k, v)| (*k, *v)))
    }

    fn toml_file(content: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(content.as_bytes()).unwrap();
        file
    }

    fn error(vars: &[(&str, &str)]) -> String {
        let message = load(vars)
            .expect_err("config should be rejected")
            .to_string();
        assert!(!message.contains('\n'), "one line: {message}");
        message
    }

    #[test]
    fn defaults_without_environment() {
        assert_eq!(load(&[]).unwrap(), Config::default());
        let config = Config::default();
        assert_eq!(config.env, "dev");
        assert_eq!(config.listen.to_string(), "0.0.0.0:8000");
        assert_eq!(config.metrics_listen.to_string(), "0.0.0.0:9000");
        assert_eq!(config.drain_seconds, 5);
        assert_eq!(config.shutdown_timeout_seconds, 20);
        assert_eq!(config.log_format, LogFormat::Json);
        assert!(config.db_password.is_none());
        assert!(!config.traces_enabled());
    }

    #[test]
    fn every_seed_variable_sets_its_key() {
        let config = load(&[
            ("APP_ENV", "recette"),
            ("APP_BANNER", "123"),
            ("DB_PASSWORD", "pw"),
            ("DATAPRESS_LISTEN", "127.0.0.1:18000"),
            ("DATAPRESS_METRICS_LISTEN", "127.0.0.1:19000"),
            ("DATAPRESS_DRAIN_SECONDS", "0"),
            ("DATAPRESS_SHUTDOWN_TIMEOUT_SECONDS", "7"),
            ("DATAPRESS_HEADER_READ_TIMEOUT_SECONDS", "3"),
            ("DATAPRESS_WRITE_TIMEOUT_SECONDS", "4"),
            ("DATAPRESS_IDLE_TIMEOUT_SECONDS", "5"),
            ("DATAPRESS_MAX_CONNECTIONS", "64"),
            ("DATAPRESS_LOG_FORMAT", "pretty"),
            ("RUST_LOG", "debug,hyper=info"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_SERVICE_NAME", "svc"),
        ])
        .unwrap();
        assert_eq!(config.env, "recette");
        // Values stay strings: a numeric banner is not reinterpreted.
        assert_eq!(config.banner, "123");
        assert_eq!(config.db_password.as_ref().map(Secret::expose), Some("pw"));
        assert_eq!(config.listen.to_string(), "127.0.0.1:18000");
        assert_eq!(config.metrics_listen.to_string(), "127.0.0.1:19000");
        assert_eq!(config.drain_seconds, 0);
        assert_eq!(config.shutdown_timeout_seconds, 7);
        assert_eq!(config.header_read_timeout_seconds, 3);
        assert_eq!(config.write_timeout_seconds, 4);
        assert_eq!(config.idle_timeout_seconds, 5);
        assert_eq!(config.max_connections, 64);
        assert_eq!(config.log_format, LogFormat::Pretty);
        assert_eq!(config.log_level, "debug,hyper=info");
        assert_eq!(config.otel.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(config.otel.service_name, "svc");
        assert_eq!(
            config.otel.traces_url().as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        // Every variable of the table is exercised by this test or a neighbour.
        assert_eq!(ENV_VARS.len(), 18);
    }

    #[test]
    fn http_traces_url_gets_the_signal_path() {
        let config = load(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")]).unwrap();
        assert_eq!(
            config.otel.traces_url().as_deref(),
            Some("http://c:4318/v1/traces")
        );
        let config = load(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:4318/custom"),
        ])
        .unwrap();
        assert_eq!(
            config.otel.traces_url().as_deref(),
            Some("http://t:4318/custom")
        );
    }

    #[test]
    fn grpc_is_not_built_in() {
        let msg = error(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]);
        assert!(msg.contains("OTEL_EXPORTER_OTLP_PROTOCOL"), "{msg}");
        assert!(msg.contains("http/protobuf"), "{msg}");
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let config = load(&[("APP_ENV", ""), ("OTEL_EXPORTER_OTLP_ENDPOINT", "")]).unwrap();
        assert_eq!(config.env, "dev");
        assert!(!config.traces_enabled());
    }

    #[test]
    fn file_is_overridden_by_environment() {
        let file = toml_file(
            "env = \"from-file\"\nbanner = \"Banner from file\"\ndrain_seconds = 9\n\
             [otel]\nservice_name = \"file-svc\"\n",
        );
        let path = file.path().to_str().unwrap();
        let config = load(&[("DATAPRESS_CONFIG", path), ("APP_ENV", "recette")]).unwrap();
        assert_eq!(config.env, "recette");
        assert_eq!(config.banner, "Banner from file");
        assert_eq!(config.drain_seconds, 9);
        assert_eq!(config.otel.service_name, "file-svc");
        assert_eq!(config.listen, Config::default().listen);
    }

    /// Every combination of the four password sources: the environment beats the TOML file,
    /// and one layer may not give both the value and a file.
    #[test]
    fn password_sources_every_pair() {
        let files: Vec<_> = ["toml-file", "env-file"]
            .iter()
            .map(|v| toml_file(&format!("{v}\n")))
            .collect();
        let (toml_secret, env_secret) = (files[0].path(), files[1].path());
        // (TOML db_password, TOML db_password_file, DB_PASSWORD, DB_PASSWORD_FILE) → result
        type Expected = Result<Option<&'static str>, &'static str>;
        let table: [([bool; 4], Expected); 16] = [
            ([false, false, false, false], Ok(None)),
            ([true, false, false, false], Ok(Some("toml-pw"))),
            ([false, true, false, false], Ok(Some("toml-file"))),
            ([true, true, false, false], Err("TOML file")),
            ([false, false, true, false], Ok(Some("env-pw"))),
            ([true, false, true, false], Ok(Some("env-pw"))),
            ([false, true, true, false], Ok(Some("env-pw"))),
            ([true, true, true, false], Ok(Some("env-pw"))),
            ([false, false, false, true], Ok(Some("env-file"))),
            ([true, false, false, true], Ok(Some("env-file"))),
            ([false, true, false, true], Ok(Some("env-file"))),
            ([true, true, false, true], Ok(Some("env-file"))),
            ([false, false, true, true], Err("environment variable")),
            ([true, false, true, true], Err("environment variable")),
            ([false, true, true, true], Err("environment variable")),
            ([true, true, true, true], Err("environment variable")),
        ];
        for ([toml_pw, toml_file_set, env_pw, env_file], expected) in table {
            let mut toml = String::new();
            if toml_pw {
                toml.push_str("db_password = \"toml-pw\"\n");
            }
            if toml_file_set {
                toml.push_str(&format!("db_password_file = {:?}\n", toml_secret));
            }
            let config_file = toml_file(&toml);
            let mut vars = vec![("DATAPRESS_CONFIG", config_file.path().to_str().unwrap())];
            if env_pw {
                vars.push(("DB_PASSWORD", "env-pw"));
            }
            if env_file {
                vars.push(("DB_PASSWORD_FILE", env_secret.to_str().unwrap()));
            }
            let case = [toml_pw, toml_file_set, env_pw, env_file];
            match (load(&vars), expected) {
                (Ok(config), Ok(want)) => assert_eq!(
                    config.db_password.as_ref().map(Secret::expose),
                    want,
                    "{case:?}"
                ),
                (Err(e), Err(origin)) => {
                    let msg = e.to_string();
                    assert!(
                        msg.contains(origin) && msg.contains("db_password"),
                        "{case:?}: {msg}"
                    );
                }
                (got, want) => panic!("{case:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn an_empty_password_file_is_an_error() {
        for content in ["", "\n", "\r\n"] {
            let secret = toml_file(content);
            let msg = error(&[
                ("DB_PASSWORD_FILE", secret.path().to_str().unwrap()),
                ("APP_ENV", "x"),
            ]);
            assert!(
                msg.contains("DB_PASSWORD_FILE") && msg.contains("empty"),
                "{msg}"
            );
        }
    }

    #[test]
    fn kubernetes_service_links_are_ignored() {
        let config = load(&[
            ("DATAPRESS_API_PORT", "tcp://10.96.0.12:80"),
            ("DATAPRESS_API_PORT_80_TCP", "tcp://10.96.0.12:80"),
            ("DATAPRESS_API_PORT_80_TCP_ADDR", "10.96.0.12"),
            ("DATAPRESS_API_PORT_80_TCP_PORT", "80"),
            ("DATAPRESS_API_PORT_80_TCP_PROTO", "tcp"),
            ("DATAPRESS_API_SERVICE_HOST", "10.96.0.12"),
            ("DATAPRESS_API_SERVICE_PORT", "80"),
            ("DATAPRESS_API_SERVICE_PORT_HTTP", "80"),
            ("DATAPRESS_FRONT_PORT", "tcp://10.96.0.13:8080"),
            ("DATAPRESS_FRONT_SERVICE_HOST", "10.96.0.13"),
        ])
        .unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn bad_values_name_their_key_and_source() {
        let msg = error(&[("DATAPRESS_LISTEN", "not-an-address")]);
        assert!(msg.contains("`listen`"), "{msg}");
        assert!(
            msg.contains("environment variable DATAPRESS_LISTEN"),
            "{msg}"
        );

        let msg = error(&[("DATAPRESS_METRICS_LISTEN", "0.0.0.0")]);
        assert!(msg.contains("DATAPRESS_METRICS_LISTEN"), "{msg}");

        let msg = error(&[("DATAPRESS_LOG_FORMAT", "xml")]);
        assert!(msg.contains("`log_format`"), "{msg}");
        assert!(msg.contains("DATAPRESS_LOG_FORMAT"), "{msg}");
        assert!(msg.contains("xml"), "{msg}");

        let msg = error(&[("DATAPRESS_DRAIN_SECONDS", "soon")]);
        assert!(msg.contains("DATAPRESS_DRAIN_SECONDS"), "{msg}");

        let msg = error(&[("DATAPRESS_SHUTDOWN_TIMEOUT_SECONDS", "0")]);
        assert!(msg.contains("DATAPRESS_SHUTDOWN_TIMEOUT_SECONDS"), "{msg}");

        let msg = error(&[("RUST_LOG", "info,[[bad")]);
        assert!(msg.contains("RUST_LOG"), "{msg}");

        let msg = error(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")]);
        assert!(msg.contains("OTEL_EXPORTER_OTLP_PROTOCOL"), "{msg}");

        let msg = error(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]);
        assert!(msg.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{msg}");
    }

    #[test]
    fn values_that_cannot_work_are_refused() {
        for (vars, key) in [
            (
                &[("DATAPRESS_HEADER_READ_TIMEOUT_SECONDS", "0")][..],
                "DATAPRESS_HEADER_READ_TIMEOUT_SECONDS",
            ),
            (
                &[("DATAPRESS_WRITE_TIMEOUT_SECONDS", "0")][..],
                "DATAPRESS_WRITE_TIMEOUT_SECONDS",
            ),
            (
                &[("DATAPRESS_DRAIN_SECONDS", "3601")][..],
                "DATAPRESS_DRAIN_SECONDS",
            ),
            (
                &[("DATAPRESS_MAX_CONNECTIONS", "0")][..],
                "DATAPRESS_MAX_CONNECTIONS",
            ),
            (
                &[
                    ("DATAPRESS_LISTEN", "0.0.0.0:8000"),
                    ("DATAPRESS_METRICS_LISTEN", "127.0.0.1:8000"),
                ][..],
                "DATAPRESS_METRICS_LISTEN",
            ),
            (
                &[("DATAPRESS_METRICS_LISTEN", "0.0.0.0:8000")][..],
                "DATAPRESS_METRICS_LISTEN",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://")][..],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://:4318")][..],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:65536")][..],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318?a")][..],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://u:pw-s3cret@c:4318")][..],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c d/v1/traces")][..],
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            ),
        ] {
            let msg = error(vars);
            assert!(msg.contains(key), "{vars:?}: {msg}");
            assert!(!msg.contains("s3cret"), "{msg}");
        }
        // Distinct ports, or port 0 (any free port) twice, are fine.
        load(&[
            ("DATAPRESS_LISTEN", "127.0.0.1:0"),
            ("DATAPRESS_METRICS_LISTEN", "127.0.0.1:0"),
        ])
        .unwrap();
        load(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://[::1]:4318/base")]).unwrap();
    }

    #[test]
    fn unreadable_password_file_is_an_error() {
        let msg = error(&[("DB_PASSWORD_FILE", "/nonexistent/datapress/pw")]);
        assert!(msg.contains("`db_password_file`"), "{msg}");
        assert!(
            msg.contains("environment variable DB_PASSWORD_FILE"),
            "{msg}"
        );
        assert!(msg.contains("/nonexistent/datapress/pw"), "{msg}");
    }

    #[test]
    fn file_errors_name_the_file() {
        let msg = error(&[("DATAPRESS_CONFIG", "/nonexistent/datapress.toml")]);
        assert!(
            msg.contains("DATAPRESS_CONFIG=/nonexistent/datapress.toml"),
            "{msg}"
        );

        let file = toml_file("env = \n[[[");
        let path = file.path().to_str().unwrap();
        let msg = error(&[("DATAPRESS_CONFIG", path)]);
        assert!(msg.contains(path), "{msg}");

        let file = toml_file("listen = \"nowhere\"\n");
        let path = file.path().to_str().unwrap();
        let msg = error(&[("DATAPRESS_CONFIG", path)]);
        assert!(msg.contains("`listen`"), "{msg}");
        assert!(msg.contains(&format!("TOML file {path}")), "{msg}");

        let file = toml_file("lsiten = \"0.0.0.0:1\"\n");
        let path = file.path().to_str().unwrap();
        let msg = error(&[("DATAPRESS_CONFIG", path)]);
        assert!(msg.contains("lsiten"), "{msg}");
    }

    #[test]
    fn a_secret_of_any_type_is_never_echoed_in_errors() {
        for value in [
            "918273645",
            "-918273645",
            "9182736.45",
            "true",
            "[\"hunter2-in-array\"]",
            "{ inner = \"hunter2-in-table\" }",
            "\"unterminated-hunter2",
            "hunter2-bare",
        ] {
            let file = toml_file(&format!("env = \"x\"\ndb_password = {value}\n"));
            let msg = error(&[("DATAPRESS_CONFIG", file.path().to_str().unwrap())]);
            for needle in ["918273645", "9182736", "hunter2", "true"] {
                assert!(!msg.contains(needle), "{value} echoed: {msg}");
            }
        }
    }

    #[test]
    fn secrets_never_reach_debug_or_serialised_output() {
        let secret = toml_file("file-secret-value\n");
        for var in [
            ("DB_PASSWORD_FILE", secret.path().to_str().unwrap()),
            ("DB_PASSWORD", "env-secret-value"),
        ] {
            let config = load(&[var]).unwrap();
            let debug = format!("{config:?}");
            let json = serde_json::to_string(&config).unwrap();
            for out in [&debug, &json] {
                assert!(!out.contains("secret-value"), "{out}");
            }
            assert!(json.contains("\"db_password\":\"[redacted]\""), "{json}");
        }
    }
}
