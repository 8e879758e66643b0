//! Differential test: the same schema, data and (non-TimescaleDB) queries on
//! tempora and on PostgreSQL 15; results must be equal in text format, row
//! for row and in their column names, and failures must carry the same
//! SQLSTATE.
//!
//! PostgreSQL comes from Debian's `postgresql-15` package (scripts/test.sh
//! installs it); the test starts a throwaway cluster on a free loopback port.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
}

fn as_postgres_user(program: &str) -> Command {
    // initdb refuses to run as root; Debian's package creates the postgres user.
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    if is_root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", program]);
        command
    } else {
        Command::new(program)
    }
}

impl Postgres {
    fn start() -> Postgres {
        let bin = Path::new(PG_BIN);
        assert!(
            bin.join("initdb").exists(),
            "PostgreSQL 15 is missing: run scripts/test.sh, which installs postgresql-15"
        );
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("pgdata");
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status();
        let status = as_postgres_user(bin.join("initdb").to_str().unwrap())
            .args([
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale",
                "C",
            ])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "initdb failed");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c TimeZone=UTC",
            dir.path().display()
        );
        let status = as_postgres_user(bin.join("pg_ctl").to_str().unwrap())
            .args(["-D", data.to_str().unwrap(), "-o", &options, "-w", "-l"])
            .arg(dir.path().join("log"))
            .arg("start")
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl start failed");
        Postgres { dir, port }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("pgdata")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres_user(Path::new(PG_BIN).join("pg_ctl").to_str().unwrap())
            .args([
                "-D",
                self.data_dir().to_str().unwrap(),
                "-m",
                "immediate",
                "stop",
            ])
            .stdout(std::process::Stdio::null())
            .status();
    }
}

async fn connect(port: u16) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

fn setup_statements() -> Vec<String> {
    let mut statements = vec![
        "CREATE TABLE sensors (sensor_id integer PRIMARY KEY, name text UNIQUE, site varchar(20))".to_owned(),
        "CREATE TABLE readings (id bigint PRIMARY KEY, sensor_id integer, recorded_at timestamptz NOT NULL, reading double precision, counter bigint, price numeric(10,3), active boolean, note text, day date, duration interval)".to_owned(),
        "INSERT INTO sensors VALUES (1, 'alpha', 'north'), (2, 'beta', 'south'), (3, 'gamma', 'north'), (4, 'delta', 'east'), (5, 'unused', 'west')".to_owned(),
        "CREATE TABLE documents (id integer PRIMARY KEY, body jsonb, raw json, blob bytea)".to_owned(),
        r#"INSERT INTO documents VALUES (1, '{"a": 1}', '{"a":1}', '\x0102'), (2, '{"page": "/p/7", "ms": 250, "tags": ["x", "y"], "ok": true, "n": null}', '[1, 2]', ''), (3, '[]', '1', NULL), (4, '"text"', 'null', NULL), (5, '{"k\u00e9y": [{"x": -0.5e-2}, 123456789012345678901234567890, 1.000]}', NULL, NULL), (6, NULL, NULL, NULL), (7, '12.5', '"s"', NULL)"#.to_owned(),
    ];
    let mut state: u64 = 42;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    };
    let mut rows = Vec::new();
    for id in 0..200u64 {
        let sensor = 1 + next() % 4;
        let minutes = id * 17 + next() % 10;
        let reading = (next() % 10_000) as f64 / 100.0;
        let counter = next() % 100_000;
        let price = format!("{}.{:03}", next() % 1000, next() % 1000);
        let active = next() % 3 != 0;
        let note = if next() % 4 == 0 {
            "NULL".to_owned()
        } else {
            format!("'note {}'", next() % 50)
        };
        let day = format!("2024-03-{:02}", 1 + next() % 28);
        let duration = format!("{} minutes", next() % 5000);
        rows.push(format!(
            "({id}, {sensor}, '2024-03-01 00:00:00+00'::timestamptz + interval '{minutes} minutes', {reading}, {counter}, {price}, {active}, {note}, '{day}', '{duration}')"
        ));
    }
    for chunk in rows.chunks(50) {
        statements.push(format!("INSERT INTO readings VALUES {}", chunk.join(", ")));
    }
    statements
}

/// Marks a statement in queries.sql whose rows may come in any order.
const ANY_ORDER: &str = "/* any order */";

fn queries() -> Vec<String> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/differential/queries.sql");
    let text = std::fs::read_to_string(path).unwrap();
    let mut queries = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("--") || line.trim().is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.trim_end().ends_with(';') {
            queries.push(current.trim().trim_end_matches(';').to_owned());
            current.clear();
        }
    }
    queries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_results_as_postgres() {
    let postgres = Postgres::start();
    let tempora = common::Server::start();
    let pg = connect(postgres.port).await;
    let tp = connect(tempora.port).await;
    for statement in setup_statements() {
        pg.batch_execute(&statement)
            .await
            .unwrap_or_else(|e| panic!("postgres: {statement}: {e}"));
        tp.batch_execute(&statement)
            .await
            .unwrap_or_else(|e| panic!("tempora: {statement}: {e}"));
    }
    let mut mismatches = Vec::new();
    let queries = queries();
    for query in &queries {
        let mut expected = common::named_text_rows(&pg, query, true).await;
        let mut actual = common::named_text_rows(&tp, query, true).await;
        // RETURNING lists rows in the order the table stores them, which
        // SQL leaves open: such statements are compared as sets of rows.
        if query.starts_with(ANY_ORDER) {
            for rows in [&mut expected, &mut actual].into_iter().flatten() {
                if !rows.is_empty() {
                    rows[1..].sort();
                }
            }
        }
        if expected != actual {
            mismatches.push(format!(
                "{query}\n  postgres: {expected:?}\n  tempora:  {actual:?}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} queries differ from PostgreSQL:\n{}",
        mismatches.len(),
        queries.len(),
        mismatches.join("\n\n")
    );
}
