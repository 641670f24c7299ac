//! Config errors that name their file and dotted key, and the collector that gathers all
//! of them in one pass so an official sees every mistake at once.

use crate::permit::reply::Language;
use crate::permit::rules::{RuleError, parse_duration};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One problem in a config or rules file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file it is in.
    pub file: PathBuf,
    /// Dotted key, e.g. `smpp.listen`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file.display(), self.key, self.message)
    }
}

/// Every problem found while loading, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// The problems found so far in one file; each section's function pushes to it and goes
/// on with a default, so one pass reports everything.
pub(super) struct Errors<'a> {
    pub(super) file: &'a Path,
    pub(super) list: Vec<ConfigError>,
}

impl<'a> Errors<'a> {
    /// No problems yet in `file`.
    pub(super) fn new(file: &'a Path) -> Self {
        Errors {
            file,
            list: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.list.push(ConfigError {
            file: self.file.to_path_buf(),
            key: key.into(),
            message: message.into(),
        });
    }

    /// An SMPP system_id: 1 to 15 characters.
    pub(super) fn system_id(&mut self, key: &str, id: &str) {
        if id.is_empty() || id.len() > 15 {
            self.push(key, "must be 1 to 15 characters (SMPP system_id)");
        }
    }

    /// A password taken from the environment variable `var`.
    pub(super) fn env_password(
        &mut self,
        key: &str,
        var: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<String> {
        match env(var) {
            Some(v) if v.is_empty() => {
                self.push(key, format!("the environment variable {var} is empty"));
                None
            }
            Some(v) => Some(v),
            None => {
                self.push(key, format!("the environment variable {var} is not set"));
                None
            }
        }
    }

    /// A plain SMPP password: at most 8 characters.
    pub(super) fn password_length(&mut self, key: &str, password: &str) {
        if password.is_empty() {
            self.push(
                key,
                "is empty: anyone could bind with it; give a password of 1 to 8 characters",
            );
        } else if password.len() > 8 {
            self.push(key, "SMPP passwords are at most 8 characters");
        }
    }

    /// A reply language tag, `default` when absent.
    pub(super) fn language(
        &mut self,
        key: &str,
        value: Option<&str>,
        default: Language,
    ) -> Language {
        match value {
            None => default,
            Some(l) => Language::parse(l).unwrap_or_else(|| {
                self.push(key, "use az, en or ru");
                default
            }),
        }
    }

    /// A count that must be at least 1, `default` when absent (or wrong).
    pub(super) fn at_least_one(&mut self, key: &str, value: Option<u32>, default: u32) -> u32 {
        match value {
            Some(0) => {
                self.push(key, "must be at least 1");
                default
            }
            Some(n) => n,
            None => default,
        }
    }

    /// A duration like `"500ms"`, `"30s"` or `"2m"`, `default` when absent (or wrong).
    pub(super) fn duration(
        &mut self,
        key: &str,
        value: Option<&str>,
        default: Duration,
    ) -> Duration {
        let Some(v) = value else {
            return default;
        };
        let parsed = match v.trim().strip_suffix("ms") {
            Some(ms) => ms
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .map(Duration::from_millis),
            None => parse_duration(v).map(|secs| Duration::from_secs(u64::from(secs))),
        };
        parsed.unwrap_or_else(|| {
            self.push(
                key,
                format!("{v:?} is not a duration like \"500ms\", \"30s\" or \"2m\""),
            );
            default
        })
    }
}

/// Rules-file errors as config errors of `file`.
pub(super) fn rule_errors(file: &Path, errors: Vec<RuleError>) -> Vec<ConfigError> {
    errors
        .into_iter()
        .map(|e| ConfigError {
            file: file.to_path_buf(),
            key: e.key,
            message: e.message,
        })
        .collect()
}
