//! Command line: `datapress-api [serve | healthcheck [--url URL] | check-config | version]`.

pub const USAGE: &str = "\
usage: datapress-api [COMMAND]

commands:
  serve                     run the API (default)
  healthcheck [--url URL]   exit 0 iff URL answers 2xx within 2 s
                            (default: /health on the configured listen port)
  check-config              print the effective configuration (secrets redacted)
  version                   print version and revision

configuration: environment variables and the optional TOML file in DATAPRESS_CONFIG";

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Serve,
    Healthcheck { url: Option<String> },
    CheckConfig,
    Version,
    Help,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}\n{USAGE}")]
pub struct UsageError(String);

pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, UsageError> {
    let mut args = args.into_iter();
    let command = match args.next().as_deref() {
        None | Some("serve") => Command::Serve,
        Some("healthcheck") => {
            let mut url = None;
            while let Some(arg) = args.next() {
                match arg.as_str() {
                    "--url" => {
                        url = Some(
                            args.next()
                                .ok_or_else(|| UsageError("--url needs a value".into()))?,
                        );
                    }
                    other => match other.strip_prefix("--url=") {
                        Some(value) => url = Some(value.to_owned()),
                        None => return Err(UsageError(format!("unexpected argument `{other}`"))),
                    },
                }
            }
            return Ok(Command::Healthcheck { url });
        }
        Some("check-config") => Command::CheckConfig,
        Some("version" | "--version" | "-V") => Command::Version,
        Some("help" | "--help" | "-h") => Command::Help,
        Some(other) => return Err(UsageError(format!("unknown command `{other}`"))),
    };
    match args.next() {
        None => Ok(command),
        Some(extra) => Err(UsageError(format!("unexpected argument `{extra}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, UsageError> {
        parse(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn parses_commands() {
        assert_eq!(p(&[]), Ok(Command::Serve));
        assert_eq!(p(&["healthcheck"]), Ok(Command::Healthcheck { url: None }));
        assert_eq!(
            p(&["healthcheck", "--url", "http://x/"]),
            Ok(Command::Healthcheck {
                url: Some("http://x/".into())
            })
        );
        assert_eq!(
            p(&["healthcheck", "--url=http://y/"]),
            Ok(Command::Healthcheck {
                url: Some("http://y/".into())
            })
        );
        assert_eq!(p(&["check-config"]), Ok(Command::CheckConfig));
        assert!(p(&["healthcheck", "--url"]).is_err());
        assert!(p(&["nope"]).is_err());
        assert!(p(&["serve", "extra"]).is_err());
    }
}
