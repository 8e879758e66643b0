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
    ("session_authorization", "postgres"),
    ("default_table_access_method", "heap"),
    ("bytea_output", "hex"),
    ("row_security", "on"),
    ("synchronous_commit", "on"),
    ("jit", "off"),
    ("max_connections", "100"),
    ("block_size", "8192"),
    ("in_hot_standby", "off"),
    ("data_directory_mode", "0700"),
    ("default_transaction_deferrable", "off"),
    ("escape_string_warning", "on"),
    ("array_nulls", "on"),
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

/// The setting a `SHOW` names, and the column name PostgreSQL gives its
/// result: the setting's own spelling (`TimeZone`), with the SQL-standard
/// forms mapped (`SHOW TRANSACTION ISOLATION LEVEL`, `SHOW TIME ZONE`).
pub(crate) fn show_names(variable: &[datafusion::sql::sqlparser::ast::Ident]) -> (String, String) {
    let words: Vec<String> = variable
        .iter()
        .map(|i| i.value.to_ascii_lowercase())
        .collect();
    let name = match words.join(" ").as_str() {
        "transaction isolation level" => "transaction_isolation".to_owned(),
        "time zone" => "timezone".to_owned(),
        "session authorization" => "session_authorization".to_owned(),
        _ => words.join("."),
    };
    let column = match name.as_str() {
        "timezone" => "TimeZone".to_owned(),
        "datestyle" => "DateStyle".to_owned(),
        "intervalstyle" => "IntervalStyle".to_owned(),
        _ => name.clone(),
    };
    (name, column)
}

/// The columns of `SHOW ALL`.
pub(crate) fn show_all_schema() -> datafusion::arrow::datatypes::SchemaRef {
    use tempora_types::PgType;
    Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
        PgType::Text.arrow_field("name", true),
        PgType::Text.arrow_field("setting", true),
        PgType::Text.arrow_field("description", true),
    ]))
}

impl Settings {
    /// `RESET ALL`: every setting back to its default.
    pub(crate) fn reset_all(&self) {
        for (name, _) in self.values.settings() {
            self.reset(&name);
        }
    }

    /// `SHOW ALL`: every setting with its value.
    pub(crate) fn show_all(&self) -> Result<datafusion::arrow::array::RecordBatch> {
        use datafusion::arrow::array::StringArray;
        let settings = self.values.settings();
        let names: Vec<&str> = settings.keys().map(String::as_str).collect();
        let values: Vec<&str> = settings.values().map(String::as_str).collect();
        let descriptions = vec![""; names.len()];
        Ok(datafusion::arrow::array::RecordBatch::try_new(
            show_all_schema(),
            vec![
                Arc::new(StringArray::from(names)),
                Arc::new(StringArray::from(values)),
                Arc::new(StringArray::from(descriptions)),
            ],
        )?)
    }

    /// PostgreSQL's defaults, kept in `session`.
    pub(crate) fn new(session: Arc<SessionInfo>) -> Self {
        for (name, value) in DEFAULTS {
            session.set_setting(name, value.to_string());
        }
        Settings { values: session }
    }

    /// `SET name = value`. Unknown names are accepted for extension
    /// namespaces (names with a dot), as PostgreSQL accepts custom settings.
    pub(crate) fn set(&self, name: &str, value: &str) -> Result<()> {
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

    pub(crate) fn reset(&self, name: &str) {
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
        let settings = Settings::new(Arc::new(SessionInfo::new("postgres")));
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
