//! The real client libraries against a spawned server: each test runs one
//! client's test program from `tests/clients/` (psycopg, asyncpg,
//! SQLAlchemy, node-postgres, JDBC; sqlx's is compiled in) or drives psql
//! and pgbench. The
//! programs check their own results and exit non-zero on the first failure.
//!
//! `scripts/ensure-test-deps.sh` installs the clients (a virtualenv in
//! `.venv`, `tests/clients/node/node_modules`, Debian's JDBC driver).

mod common;
#[path = "../../../tests/clients/sqlx_test.rs"]
mod sqlx_test;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn require(path: &Path) {
    assert!(
        path.exists(),
        "{} is missing: run ./scripts/ensure-test-deps.sh",
        path.display()
    );
}

/// Runs a client program against `server` and fails with its output
/// unless it succeeds.
fn run(server: &common::Server, program: &Path, args: &[&str]) -> Output {
    require(program);
    let output = Command::new(program)
        .args(args)
        .current_dir(repository())
        .env("TEMPORA_PORT", server.port.to_string())
        .env("PGPORT", server.port.to_string())
        .env("PGHOST", "127.0.0.1")
        .env("PGUSER", "postgres")
        .env("PGDATABASE", "postgres")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    assert!(
        output.status.success(),
        "{} {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        program.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn python() -> PathBuf {
    repository().join(".venv/bin/python")
}

#[tokio::test]
async fn sqlx() {
    let server = common::Server::start();
    sqlx_test::run(server.port).await;
}

#[test]
fn psycopg() {
    let server = common::Server::start();
    run(&server, &python(), &["tests/clients/psycopg_test.py"]);
}

#[test]
fn asyncpg() {
    let server = common::Server::start();
    run(&server, &python(), &["tests/clients/asyncpg_test.py"]);
}

#[test]
fn sqlalchemy() {
    let server = common::Server::start();
    run(&server, &python(), &["tests/clients/sqlalchemy_test.py"]);
}

#[test]
fn node_postgres() {
    require(&repository().join("tests/clients/node/node_modules/pg"));
    let server = common::Server::start();
    run(
        &server,
        Path::new("/usr/bin/node"),
        &["tests/clients/node/node_pg_test.js"],
    );
}

#[test]
fn jdbc() {
    let jar = Path::new("/usr/share/java/postgresql.jar");
    require(jar);
    let classes = tempfile::tempdir().unwrap();
    let compiled = Command::new("javac")
        .args(["-d"])
        .arg(classes.path())
        .args(["-cp", "/usr/share/java/postgresql.jar"])
        .arg(repository().join("tests/clients/jdbc/JdbcTest.java"))
        .output()
        .expect("javac runs");
    assert!(
        compiled.status.success(),
        "javac failed:\n{}",
        String::from_utf8_lossy(&compiled.stderr)
    );
    let server = common::Server::start();
    let class_path = format!("{}:{}", classes.path().display(), jar.display());
    run(
        &server,
        Path::new("/usr/bin/java"),
        &["-cp", &class_path, "JdbcTest"],
    );
}

fn psql(server: &common::Server, commands: &[&str]) -> String {
    let mut args = vec!["-X", "-q", "-v", "ON_ERROR_STOP=1"];
    for command in commands {
        args.push("-c");
        args.push(command);
    }
    let output = run(server, Path::new("/usr/bin/psql"), &args);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// psql's describe commands on a hypertable, checked against the output
/// PostgreSQL with TimescaleDB gives (less its insert-blocker trigger),
/// and `\copy` from a CSV file.
#[test]
fn psql_describes_hypertables_and_copies_files() {
    let server = common::Server::start();
    psql(
        &server,
        &[
            "CREATE EXTENSION IF NOT EXISTS timescaledb",
            "CREATE TABLE readings (time timestamptz NOT NULL, device text NOT NULL, value double precision DEFAULT 0, PRIMARY KEY (device, time))",
            "SELECT create_hypertable('readings', by_range('time', interval '1 day'))",
            "CREATE INDEX readings_time ON readings (time DESC)",
            "\\copy readings FROM 'tests/clients/psql/readings.csv' WITH (FORMAT csv)",
        ],
    );
    let described = psql(&server, &["\\d readings", "\\d+ readings", "\\dt", "\\dx"]);
    let expected = std::fs::read_to_string(repository().join("tests/clients/psql/describe.out"))
        .expect("tests/clients/psql/describe.out");
    assert_eq!(
        described, expected,
        "psql's output differs from tests/clients/psql/describe.out"
    );
    let counted = psql(
        &server,
        &[
            "\\pset tuples_only on",
            "SELECT count(*), count(value) FROM readings",
        ],
    );
    assert_eq!(counted.trim(), "3 |     2");
    // \timing prints the time of each statement, measured by psql.
    let timed = psql(&server, &["\\timing on", "SELECT 1"]);
    assert!(timed.contains("Time: "), "{timed}");
}

/// pgbench with a custom script, 20 clients, in simple, extended and
/// prepared protocol modes; every transaction commits.
#[test]
fn pgbench_runs_a_custom_script() {
    let server = common::Server::start();
    psql(
        &server,
        &[
            "CREATE TABLE pgbench_readings (time timestamptz NOT NULL, device integer, value double precision)",
            "SELECT create_hypertable('pgbench_readings', 'time')",
        ],
    );
    for mode in ["simple", "extended", "prepared"] {
        let output = run(
            &server,
            Path::new("/usr/bin/pgbench"),
            &[
                "-n",
                "-f",
                "tests/clients/pgbench_script.sql",
                "-c",
                "20",
                "-t",
                "10",
                "-M",
                mode,
            ],
        );
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            report.contains("number of transactions actually processed: 200/200"),
            "{mode}: {report}"
        );
        assert!(
            report.contains("number of failed transactions: 0"),
            "{report}"
        );
    }
    let count = psql(
        &server,
        &[
            "\\pset tuples_only on",
            "SELECT count(*) FROM pgbench_readings",
        ],
    );
    assert_eq!(count.trim(), "600");
}
