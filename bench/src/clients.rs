//! `--clients`: what a client sees of a server, tempora and PostgreSQL 15
//! side by side: pgbench's transactions per second on `SELECT 1` (one
//! client, and 20 clients on two threads), pgbench `-C` (a new connection
//! per transaction: connection set-up), and asyncpg's `executemany` of
//! seed 002's events (one pipeline of single-row INSERTs, committed at
//! Sync): its first run on the server, and the median of the three after
//! it. The first run's buffers, page cache pages and WAL are memory the
//! server touches for the first time, which on a virtual machine costs
//! more than the INSERTs (see the README); the runs after it reuse it.

use std::path::Path;
use std::process::Command;

use crate::{PG_BIN, Postgres, Tempora};

/// Seconds each pgbench run lasts.
const PGBENCH_SECONDS: &str = "10";

/// Runs `command` (`what` names it) and returns its standard output;
/// panics with its output unless it succeeds.
fn output_of(command: &mut Command, what: &str, missing: &str) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what} ({missing}): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// One pgbench run against `port`: its transactions per second.
fn pgbench(port: u16, script: &Path, extra: &[&str]) -> f64 {
    let stdout = output_of(
        Command::new(Path::new(PG_BIN).join("pgbench"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .args(["-n", "-T", PGBENCH_SECONDS, "-f"])
            .arg(script)
            .args(extra)
            .arg("postgres"),
        &format!("pgbench {extra:?}"),
        "scripts/ensure-test-deps.sh installs postgresql-15",
    );
    // "tps = 1234.5 (without initial connection time)"; with -C pgbench
    // counts the connections in, which is the point of -C.
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|tps| tps.parse().ok())
        .unwrap_or_else(|| panic!("no tps in pgbench's output:\n{stdout}"))
}

/// asyncpg's executemany of `rows` events: rows per second.
fn executemany(port: u16, rows: u64, setup: &str) -> f64 {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let stdout = output_of(
        Command::new(root.join(".venv/bin/python"))
            .arg(root.join("bench/clients/asyncpg_executemany.py"))
            .args([&port.to_string(), &rows.to_string(), setup]),
        "asyncpg executemany",
        "scripts/ensure-test-deps.sh installs asyncpg into .venv",
    );
    stdout.trim().parse().expect("rows per second")
}

/// Timed executemany runs after the first, of which the median is kept.
const EXECUTEMANY_RUNS: usize = 3;

struct ClientTimings {
    select_one: f64,
    select_twenty: f64,
    connections: f64,
    /// The first executemany's rows per second.
    executemany_first: f64,
    /// The median of the next `EXECUTEMANY_RUNS`.
    executemany: f64,
}

/// The first executemany run's rows per second, and the median of the
/// `EXECUTEMANY_RUNS` after it (each into a table made anew).
fn executemany_runs(port: u16, rows: u64, setup: &str) -> (f64, f64) {
    let first = executemany(port, rows, setup);
    let mut runs: Vec<f64> = (0..EXECUTEMANY_RUNS)
        .map(|_| executemany(port, rows, setup))
        .collect();
    runs.sort_by(f64::total_cmp);
    (first, runs[runs.len() / 2])
}

fn measure(port: u16, script: &Path, rows: u64, setup: &str) -> ClientTimings {
    let select_one = pgbench(port, script, &["-c", "1"]);
    let select_twenty = pgbench(port, script, &["-c", "20", "-j", "2"]);
    let connections = pgbench(port, script, &["-C", "-c", "1"]);
    let (executemany_first, executemany) = executemany_runs(port, rows, setup);
    ClientTimings {
        select_one,
        select_twenty,
        connections,
        executemany_first,
        executemany,
    }
}

pub(crate) fn run(binary: &Path, rows: u64) {
    let workdir = tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap();
    let script = workdir.path().join("select1.sql");
    std::fs::write(&script, "SELECT 1;\n").unwrap();
    println!(
        "clients: pgbench -n -T {PGBENCH_SECONDS} -f select1.sql; asyncpg executemany of {rows} rows"
    );

    let tempora = Tempora::start(binary, &workdir.path().join("tempora-data"));
    let t = measure(tempora.port, &script, rows, "hypertable");
    tempora.stop();
    let postgres = Postgres::start();
    // PostgreSQL gets the index on time a hypertable has.
    let p = measure(postgres.port, &script, rows, "index");
    drop(postgres);

    println!();
    println!(
        "{:<40} {:>14} {:>14} {:>10}",
        "", "tempora", "PostgreSQL 15", "ratio"
    );
    let line =
        |name: &str, t: f64, p: f64| println!("{name:<40} {t:>14.0} {p:>14.0} {:>9.2}x", t / p);
    line("SELECT 1, 1 client (tps)", t.select_one, p.select_one);
    line(
        "SELECT 1, 20 clients (tps)",
        t.select_twenty,
        p.select_twenty,
    );
    line("connect + SELECT 1, -C (tps)", t.connections, p.connections);
    line(
        "asyncpg executemany, 1st run (rows/s)",
        t.executemany_first,
        p.executemany_first,
    );
    line(
        &format!("asyncpg executemany, median of next {EXECUTEMANY_RUNS}"),
        t.executemany,
        p.executemany,
    );
    println!("(ratios: higher is better for tempora)");
}
