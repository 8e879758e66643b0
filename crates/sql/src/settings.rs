//! Session settings for `SET` and `SHOW`: the ones drivers and tools touch,
//! with PostgreSQL 15's defaults.

use std::sync::Arc;

use tempora_query::session_info::SessionInfo;

use crate::{Error, Result};

/// The server version reported to clients.
pub use tempora_query::SERVER_VERSION;

/// A session's settings. The values live in its [`SessionInfo`], where
/// `current_setting()` and `pg_settings` read them.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    values: Arc<SessionInfo>,
}

const DEFAULTS: &[(&str, &str)] = &[
    ("application_name", ""),
    ("client_encoding", "UTF8"),
    ("client_min_messages", "notice"),
    ("datestyle", "ISO, MDY"),
    ("default_transaction_isolation", "read committed"),
    ("default_transaction_read_only", "off"),
    ("extra_float_digits", "1"),
    ("idle_in_transaction_session_timeout", "0"),
    ("integer_datetimes", "on"),
    ("intervalstyle", "postgres"),
    ("is_superuser", "on"),
    ("lock_timeout", "0"),
    ("max_identifier_length", "63"),
    ("search_path", "\"$user\", public"),
    ("server_encoding", "UTF8"),
    ("server_version", SERVER_VERSION),
    ("server_version_num", "150000"),
    ("standard_conforming_strings", "on"),
    ("statement_timeout", "0"),
    ("timezone", "UTC"),
    ("transaction_isolation", "read committed"),
    ("transaction_read_only", "off"),
    ("timescaledb.telemetry_level", "off"),
    ("timescaledb.enable_chunk_skipping", "on"),
    ("timescaledb.max_background_workers", "16"),
    (
        "timescaledb_information.version",
        tempora_query::views::TIMESCALEDB_VERSION,
    ),
    ("work_mem", "4MB"),
];

/// Time zones that mean UTC; tempora prints timestamps in UTC only so far.
const UTC_NAMES: &[&str] = &[
    "utc",
    "etc/utc",
    "gmt",
    "etc/gmt",
    "z",
    "zulu",
    "uct",
    "+00",
    "+00:00",
    "0",
    "universal",
];

impl Settings {
    /// PostgreSQL's defaults, kept in `session`.
    pub(crate) fn new(session: Arc<SessionInfo>) -> Self {
        for (name, value) in DEFAULTS {
            session.set_setting(name, value.to_string());
        }
        Settings { values: session }
    }

    /// `SET name = value`. Unknown names are accepted for extension
    /// namespaces (names with a dot), as PostgreSQL accepts custom settings.
    pub(crate) fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let key = name.to_ascii_lowercase();
        if self.values.setting(&key).is_none() && !key.contains('.') {
            return Err(Error::UnknownSetting {
                name: name.to_owned(),
            });
        }
        let value = match key.as_str() {
            "timezone" => {
                if !UTC_NAMES.contains(&value.to_ascii_lowercase().as_str()) {
                    return Err(Error::not_supported(format!(
                        "time zone \"{value}\" (tempora sessions run in UTC)"
                    )));
                }
                "UTC".to_owned()
            }
            "datestyle" => {
                if !value.to_ascii_uppercase().contains("ISO") {
                    return Err(Error::not_supported(format!("DateStyle \"{value}\"")));
                }
                "ISO, MDY".to_owned()
            }
            "client_encoding" => {
                let upper = value.to_ascii_uppercase().replace('-', "");
                if upper != "UTF8" && upper != "UNICODE" {
                    return Err(Error::not_supported(format!("client encoding \"{value}\"")));
                }
                "UTF8".to_owned()
            }
            "server_version"
            | "server_version_num"
            | "server_encoding"
            | "integer_datetimes"
            | "max_identifier_length"
            | "is_superuser" => {
                return Err(Error::InvalidParameter {
                    message: format!("parameter \"{name}\" cannot be changed"),
                });
            }
            _ => value.to_owned(),
        };
        self.values.set_setting(&key, value);
        Ok(())
    }

    pub(crate) fn reset(&mut self, name: &str) {
        let key = name.to_ascii_lowercase();
        if let Some((_, default)) = DEFAULTS.iter().find(|(k, _)| *k == key) {
            self.values.set_setting(&key, default.to_string());
        } else {
            self.values.remove_setting(&key);
        }
    }

    pub(crate) fn get(&self, name: &str) -> Result<String> {
        self.values
            .setting(name)
            .ok_or_else(|| Error::UnknownSetting {
                name: name.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_behave_like_postgres() {
        let mut settings = Settings::new(Arc::new(SessionInfo::new("postgres")));
        assert_eq!(settings.get("TimeZone").unwrap(), "UTC");
        settings.set("application_name", "psql").unwrap();
        assert_eq!(settings.get("application_name").unwrap(), "psql");
        settings.set("myext.flag", "1").unwrap();
        assert!(matches!(
            settings.set("no_such_thing", "1"),
            Err(Error::UnknownSetting { .. })
        ));
        assert!(matches!(
            settings.set("TimeZone", "Europe/Berlin"),
            Err(Error::NotSupported { .. })
        ));
        settings.set("TimeZone", "Etc/UTC").unwrap();
        settings.reset("application_name");
        assert_eq!(settings.get("application_name").unwrap(), "");
    }
}
