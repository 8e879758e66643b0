//! Runs every `tests/sql/*.slt` file over the wire protocol against a fresh
//! tempora server (one server per file), with tokio-postgres as the client.

mod common;

use std::path::PathBuf;

use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};

struct Postgres {
    client: tokio_postgres::Client,
}

#[derive(Debug)]
struct DbError {
    message: String,
    sqlstate: Option<String>,
}

/// `SQLSTATE: message`, so that `statement error <regex>` can check both.
impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.sqlstate {
            Some(code) => write!(f, "{code}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for DbError {}

impl From<tokio_postgres::Error> for DbError {
    fn from(error: tokio_postgres::Error) -> Self {
        match error.as_db_error() {
            Some(db) => DbError {
                // The DETAIL line too, so a test can check it (23505's key).
                message: match db.detail() {
                    Some(detail) => format!("{} DETAIL: {detail}", db.message()),
                    None => db.message().to_owned(),
                },
                sqlstate: Some(db.code().code().to_owned()),
            },
            None => DbError {
                message: error.to_string(),
                sqlstate: None,
            },
        }
    }
}

#[async_trait::async_trait]
impl AsyncDB for Postgres {
    type Error = DbError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<Self::ColumnType>, Self::Error> {
        let messages = self.client.simple_query(sql).await?;
        let mut rows = Vec::new();
        let mut columns = None;
        let mut affected = None;
        for message in messages {
            match message {
                tokio_postgres::SimpleQueryMessage::RowDescription(description) => {
                    columns = Some(description.len())
                }
                tokio_postgres::SimpleQueryMessage::Row(row) => {
                    columns = Some(row.len());
                    rows.push(
                        (0..row.len())
                            .map(|i| match row.get(i) {
                                None => "NULL".to_owned(),
                                Some("") => "(empty)".to_owned(),
                                Some(value) => value.to_owned(),
                            })
                            .collect(),
                    );
                }
                tokio_postgres::SimpleQueryMessage::CommandComplete(count) => {
                    affected = Some(count)
                }
                _ => {}
            }
        }
        match columns {
            Some(count) => Ok(DBOutput::Rows {
                types: vec![DefaultColumnType::Any; count],
                rows,
            }),
            None => Ok(DBOutput::StatementComplete(affected.unwrap_or(0))),
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "tempora"
    }

    fn error_sql_state(error: &Self::Error) -> Option<String> {
        error.sqlstate.clone()
    }
}

fn slt_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/sql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/sql exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_logic_tests() {
    let files = slt_files();
    assert!(!files.is_empty(), "no .slt files found");
    let filter = std::env::var("SLT").ok();
    let mut failures = Vec::new();
    for file in files {
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let server = common::Server::start();
        let connection_string = server.connection_string();
        let mut runner = sqllogictest::Runner::new(move || {
            let connection_string = connection_string.clone();
            async move {
                let (client, connection) =
                    tokio_postgres::connect(&connection_string, tokio_postgres::NoTls).await?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok::<_, DbError>(Postgres { client })
            }
        });
        runner.add_label("tempora");
        match runner.run_file_async(&file).await {
            Ok(()) => eprintln!("ok   {name}"),
            Err(error) => {
                eprintln!("FAIL {name}\n{error}");
                failures.push(format!("{name}: {error}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} sqllogictest file(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
