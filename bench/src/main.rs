//! End-to-end benchmark: loads the same telemetry table into tempora and into
//! PostgreSQL 15 in one run and prints rows/s, query times and bytes on disk,
//! with tempora/PostgreSQL ratios.
//!
//! Both servers run on this machine with durable commits (tempora fsyncs its
//! WAL, PostgreSQL runs with its defaults: fsync on, synchronous_commit on).
//! PostgreSQL gets the index a time-series user would create, on `(time)`;
//! tempora's hypertable needs none. The rows (COPY text and INSERT
//! statements) are generated before the clocks start, so both servers are
//! timed on ingesting, not on the benchmark's generator.
//!
//! ```text
//! cargo build --release -p tempora -p tempora-bench
//! target/release/tempora-bench            # 10M rows; --rows to change
//! target/release/tempora-bench --clients  # pgbench and asyncpg (see clients.rs)
//! ```

mod clients;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::{SinkExt, TryStreamExt};
use tokio_postgres::types::ToSql;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// 2024-01-01 00:00:00 UTC.
const START_SECONDS: i64 = 1_704_067_200;
const DAYS: i64 = 30;

#[derive(Parser)]
struct Args {
    /// Rows to load in all (90% by COPY, 10% by 1000-row INSERTs).
    #[arg(long, default_value_t = 10_000_000)]
    rows: u64,
    #[arg(long, default_value_t = 1000)]
    devices: u64,
    /// The tempora binary to benchmark.
    #[arg(long, default_value = "target/release/tempora")]
    tempora: PathBuf,
    /// Load nothing: time the aggregate against a running server on this
    /// port (with a telemetry table loaded earlier), e.g. while profiling it.
    #[arg(long)]
    attach: Option<u16>,
    /// With --attach: time the point UPDATEs and DELETEs (and the day's
    /// DELETE) instead of the aggregate; the table must be one --load-only made.
    #[arg(long, requires = "attach")]
    writes: bool,
    /// Load tempora only, into this data directory (key and upsert included),
    /// and stop: a table to profile against with --attach.
    #[arg(long, conflicts_with_all = ["attach", "clients"])]
    load_only: Option<PathBuf>,
    /// Only the client benchmarks: pgbench and asyncpg's executemany.
    #[arg(long)]
    clients: bool,
    /// Rows asyncpg's executemany inserts (with --clients).
    #[arg(long, default_value_t = 100_000)]
    executemany_rows: u64,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn as_postgres_user(program: &Path) -> Command {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    if is_root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
}

impl Postgres {
    fn start() -> Postgres {
        let dir = tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap();
        let data = dir.path().join("pgdata");
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status();
        let ok = as_postgres_user(&Path::new(PG_BIN).join("initdb"))
            .args([
                "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale", "C", "-D",
            ])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "initdb failed (is postgresql-15 installed? scripts/ensure-test-deps.sh installs it)"
        );
        let port = free_port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c shared_buffers=1GB -c max_wal_size=4GB -c TimeZone=UTC",
            dir.path().display()
        );
        let ok = as_postgres_user(&Path::new(PG_BIN).join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "-w", "-l"])
            .arg(dir.path().join("log"))
            .arg("start")
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "pg_ctl start failed");
        Postgres { dir, port }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres_user(&Path::new(PG_BIN).join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("pgdata"))
            .args(["-m", "fast", "stop"])
            .stdout(Stdio::null())
            .status();
    }
}

struct Tempora {
    child: std::process::Child,
    port: u16,
}

impl Tempora {
    fn start(binary: &Path, data_dir: &Path) -> Tempora {
        let port = free_port();
        let child = Command::new(binary)
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            // The server logs warnings, or what TEMPORA_BENCH_LOG asks for.
            .env(
                "RUST_LOG",
                std::env::var("TEMPORA_BENCH_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .spawn()
            .expect("start tempora (build it with cargo build --release -p tempora)");
        let deadline = Instant::now() + Duration::from_secs(120);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tempora did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Tempora { child, port }
    }

    /// SIGTERM: the server checkpoints its memtables into segment files.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// A session and the task driving its connection.
async fn connect(port: u16) -> (tokio_postgres::Client, tokio::task::JoinHandle<()>) {
    let (client, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
        tokio_postgres::NoTls,
    )
    .await
    .expect("connect");
    let connection = tokio::spawn(async move {
        let _ = connection.await;
    });
    (client, connection)
}

/// Ends the session and waits until its connection is closed, so that a
/// server stopped next has no session left to wait for (the runtime has
/// one thread, which stopping the server blocks).
async fn disconnect(client: tokio_postgres::Client, connection: tokio::task::JoinHandle<()>) {
    drop(client);
    let _ = connection.await;
}

/// Deterministic telemetry: each device reports every `step` seconds over 30
/// days; six measurements with two decimals that drift slowly, as sensors do.
struct Generator {
    devices: u64,
    step_seconds: i64,
}

impl Generator {
    fn value(device: u64, tick: i64, channel: u64) -> f64 {
        let mut x = device.wrapping_mul(0x9E3779B97F4A7C15)
            ^ (tick as u64).wrapping_mul(0xBF58476D1CE4E5B9)
            ^ channel;
        x ^= x >> 31;
        x = x.wrapping_mul(0x94D049BB133111EB);
        x ^= x >> 29;
        let base = 20.0 + channel as f64 * 10.0 + (device % 50) as f64;
        let wave = ((tick as f64) / 100.0 + device as f64).sin() * 5.0;
        let noise = (x % 100) as f64 / 100.0;
        ((base + wave + noise) * 100.0).round() / 100.0
    }

    /// Row `index` (0-based) as COPY text.
    fn row(&self, index: u64, out: &mut String) {
        use std::fmt::Write;
        let device = index % self.devices;
        let tick = (index / self.devices) as i64;
        let seconds =
            START_SECONDS + tick * self.step_seconds + (device as i64 % self.step_seconds.max(1));
        let days = seconds.div_euclid(86_400);
        let second_of_day = seconds.rem_euclid(86_400);
        // 2024-01-01 is day 19723 since the epoch; rows stay within January 2024.
        let day_of_month = days - 19_723 + 1;
        let _ = write!(
            out,
            "2024-01-{:02} {:02}:{:02}:{:02}+00\tdevice_{:04}",
            day_of_month,
            second_of_day / 3600,
            (second_of_day / 60) % 60,
            second_of_day % 60,
            device
        );
        for channel in 0..6 {
            let _ = write!(out, "\t{}", Self::value(device, tick, channel));
        }
        out.push('\n');
    }
}

const CREATE: &str = "CREATE TABLE telemetry (time timestamptz NOT NULL, device_id text NOT NULL, \
    cpu double precision, memory double precision, disk double precision, \
    network double precision, temperature double precision, power double precision)";

/// The load, generated before any clock starts so that both servers are
/// timed on taking rows in, not on the benchmark making them up.
struct Workload {
    /// One entry per COPY statement: its CopyData messages (4 MiB each).
    copies: Vec<Vec<bytes::Bytes>>,
    copy_rows: u64,
    /// 1000-row INSERT statements.
    inserts: Vec<String>,
    insert_rows: u64,
}

impl Workload {
    fn generate(generator: &Generator, rows: u64) -> Workload {
        let copy_rows = rows * 9 / 10;
        let copy_batch = 1_000_000;
        let mut copies = Vec::new();
        let mut start = 0;
        while start < copy_rows {
            let end = (start + copy_batch).min(copy_rows);
            let mut messages = Vec::new();
            let mut buffer = String::with_capacity(5 << 20);
            for index in start..end {
                generator.row(index, &mut buffer);
                if buffer.len() > (4 << 20) {
                    messages.push(bytes::Bytes::from(std::mem::take(&mut buffer)));
                    buffer.reserve(5 << 20);
                }
            }
            if !buffer.is_empty() {
                messages.push(bytes::Bytes::from(buffer));
            }
            copies.push(messages);
            start = end;
        }
        let mut inserts = Vec::new();
        let mut start = copy_rows;
        while start < rows {
            let end = (start + 1000).min(rows);
            inserts.push(insert_statement(generator, start..end));
            start = end;
        }
        Workload {
            copies,
            copy_rows,
            inserts,
            insert_rows: rows - copy_rows,
        }
    }
}

async fn copy_messages(client: &tokio_postgres::Client, messages: &[bytes::Bytes]) {
    copy_into(client, "telemetry", messages).await;
}

async fn copy_into(client: &tokio_postgres::Client, table: &str, messages: &[bytes::Bytes]) {
    let sink = client
        .copy_in(&format!("COPY {table} FROM STDIN"))
        .await
        .unwrap();
    futures::pin_mut!(sink);
    for message in messages {
        sink.send(message.clone()).await.unwrap();
    }
    sink.finish().await.unwrap();
}

fn insert_statement(generator: &Generator, range: std::ops::Range<u64>) -> String {
    let mut line = String::new();
    let mut values = Vec::with_capacity((range.end - range.start) as usize);
    for index in range {
        line.clear();
        generator.row(index, &mut line);
        let fields: Vec<&str> = line.trim_end().split('\t').collect();
        values.push(format!(
            "('{}', '{}', {})",
            fields[0],
            fields[1],
            fields[2..].join(", ")
        ));
    }
    format!("INSERT INTO telemetry VALUES {}", values.join(", "))
}

/// The rows of the bulk upsert as COPY text: `count` rows, every other
/// one the key of a loaded row with new values (an update), the others a
/// new device's (an insert).
fn upsert_rows(generator: &Generator, rows: u64, count: u64) -> Vec<bytes::Bytes> {
    let mut messages = Vec::new();
    let mut buffer = String::with_capacity(5 << 20);
    let mut line = String::new();
    for k in 0..count {
        line.clear();
        generator.row((k * 9_973 + 17) % rows, &mut line);
        let mut fields: Vec<String> = line.trim_end().split('\t').map(str::to_owned).collect();
        if k % 2 == 1 {
            fields[1] = fields[1].replace("device_", "device_new_");
        }
        fields[2] = format!("{}", k % 1000);
        buffer.push_str(&fields.join("\t"));
        buffer.push('\n');
        if buffer.len() > (4 << 20) {
            messages.push(bytes::Bytes::from(std::mem::take(&mut buffer)));
        }
    }
    if !buffer.is_empty() {
        messages.push(bytes::Bytes::from(buffer));
    }
    messages
}

const UPSERT: &str = "INSERT INTO telemetry SELECT * FROM telemetry_upsert \
    ON CONFLICT (device_id, time) DO UPDATE SET cpu = excluded.cpu, memory = excluded.memory";

/// Adds the primary key (device_id, time) to the loaded table, then
/// upserts the rows of `upsert` (staged in a table by COPY first); returns
/// the seconds of each and the rows the table holds after.
async fn keys_and_upsert(
    client: &tokio_postgres::Client,
    upsert: &[bytes::Bytes],
) -> (f64, f64, i64) {
    let started = Instant::now();
    client
        .batch_execute("ALTER TABLE telemetry ADD PRIMARY KEY (device_id, time)")
        .await
        .unwrap();
    let key_seconds = started.elapsed().as_secs_f64();
    client
        .batch_execute(&CREATE.replace("telemetry", "telemetry_upsert"))
        .await
        .unwrap();
    copy_into(client, "telemetry_upsert", upsert).await;
    let started = Instant::now();
    client.batch_execute(UPSERT).await.unwrap();
    let upsert_seconds = started.elapsed().as_secs_f64();
    let rows: i64 = client
        .query_one("SELECT count(*) FROM telemetry", &[])
        .await
        .unwrap()
        .get(0);
    (key_seconds, upsert_seconds, rows)
}

struct Timings {
    copy_rows_per_second: f64,
    insert_rows_per_second: f64,
    query_seconds: f64,
    bytes_on_disk: u64,
    /// Seconds to add the primary key to the loaded table.
    key_seconds: f64,
    /// Seconds of the bulk upsert, and the rows after it.
    upsert_seconds: f64,
    rows_after_upsert: i64,
    writes: WriteTimings,
}

/// Changes to loaded rows, each its own autocommit statement.
struct WriteTimings {
    /// Mean milliseconds of an UPDATE of one row named by (device_id, time).
    point_update_ms: f64,
    /// Mean milliseconds of a DELETE of one row named by (device_id, time).
    point_delete_ms: f64,
    /// Seconds to DELETE one day of the 30.
    day_delete_seconds: f64,
    day_rows: u64,
}

/// (device_id, time) of `count` loaded rows, spread over the table.
fn row_keys(generator: &Generator, rows: u64, count: u64) -> Vec<(String, String)> {
    let mut keys = Vec::new();
    let mut line = String::new();
    for k in 0..count {
        line.clear();
        generator.row((k * 7_919_993 + 12_345) % rows, &mut line);
        let mut fields = line.split('\t');
        let time = fields.next().unwrap_or_default().to_owned();
        let device = fields.next().unwrap_or_default().to_owned();
        keys.push((device, time));
    }
    keys
}

const DAY_FILTER: &str = "time >= '2024-01-10 00:00:00+00' AND time < '2024-01-11 00:00:00+00'";

async fn writes(client: &tokio_postgres::Client, keys: &[(String, String)]) -> WriteTimings {
    let half = keys.len() / 2;
    let day_rows_loaded: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM telemetry WHERE {DAY_FILTER}"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    eprintln!(
        "point changes: {half} UPDATEs, then {} DELETEs",
        keys.len() - half
    );
    let started = Instant::now();
    for (device, time) in &keys[..half] {
        let changed = client
            .execute(
                &format!("UPDATE telemetry SET cpu = cpu + 1 WHERE device_id = '{device}' AND time = '{time}'"),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(changed, 1, "UPDATE of {device} at {time}");
    }
    let point_update_ms = started.elapsed().as_secs_f64() * 1000.0 / half as f64;
    let started = Instant::now();
    for (device, time) in &keys[half..] {
        let changed = client
            .execute(
                &format!("DELETE FROM telemetry WHERE device_id = '{device}' AND time = '{time}'"),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(changed, 1, "DELETE of {device} at {time}");
    }
    let point_delete_ms = started.elapsed().as_secs_f64() * 1000.0 / (keys.len() - half) as f64;
    let day_rows_before: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM telemetry WHERE {DAY_FILTER}"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let started = Instant::now();
    let day_rows = client
        .execute(&format!("DELETE FROM telemetry WHERE {DAY_FILTER}"), &[])
        .await
        .unwrap();
    eprintln!(
        "day 10: {day_rows_loaded} rows loaded, {day_rows_before} before its DELETE, {day_rows} deleted"
    );
    WriteTimings {
        point_update_ms,
        point_delete_ms,
        day_delete_seconds: started.elapsed().as_secs_f64(),
        day_rows,
    }
}

const QUERY: &str = "SELECT time_bucket('1 hour', time) AS bucket, device_id, avg(cpu), max(temperature) \
    FROM telemetry WHERE time > '2024-01-24 00:00:00+00' GROUP BY 1, 2";
const PG_QUERY: &str = "SELECT date_bin('1 hour', time, '2000-01-03'::timestamptz) AS bucket, device_id, avg(cpu), max(temperature) \
    FROM telemetry WHERE time > '2024-01-24 00:00:00+00' GROUP BY 1, 2";

async fn load(client: &tokio_postgres::Client, workload: &Workload) -> (f64, f64) {
    let started = Instant::now();
    for messages in &workload.copies {
        copy_messages(client, messages).await;
    }
    let copy_rate = workload.copy_rows as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for statement in &workload.inserts {
        client.batch_execute(statement).await.unwrap();
    }
    let insert_rate = workload.insert_rows as f64 / started.elapsed().as_secs_f64();
    (copy_rate, insert_rate)
}

async fn time_query(client: &tokio_postgres::Client, query: &str) -> f64 {
    let mut times = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        // Rows are counted as they arrive rather than kept: the client's
        // allocations for a kept result would be timed too.
        let stream = client
            .query_raw(query, std::iter::empty::<&(dyn ToSql + Sync)>())
            .await
            .unwrap();
        futures::pin_mut!(stream);
        let mut rows = 0u64;
        while stream.try_next().await.unwrap().is_some() {
            rows += 1;
        }
        times.push(started.elapsed().as_secs_f64());
        assert!(rows > 0);
    }
    times.sort_by(f64::total_cmp);
    times[1]
}

fn directory_size(path: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            total += if metadata.is_dir() {
                directory_size(&entry.path())
            } else {
                metadata.len()
            };
        }
    }
    total
}

// One thread for the client: its connection task hands each result's rows
// to the waiting query without waking another thread. The same for both
// servers; on the multi-thread runtime the client's share of the
// aggregate's time was about a third.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    if args.clients {
        clients::run(&args.tempora, args.executemany_rows);
        return;
    }
    let step_seconds = (DAYS * 86_400 * args.devices as i64 / args.rows as i64).max(1);
    let generator = Generator {
        devices: args.devices,
        step_seconds,
    };
    if let Some(port) = args.attach {
        let (client, _connection) = connect(port).await;
        if args.writes {
            let keys = row_keys(&generator, args.rows, 2000);
            let w = writes(&client, &keys).await;
            println!(
                "point UPDATE {:.3} ms, point DELETE {:.3} ms, day DELETE {:.3} s",
                w.point_update_ms, w.point_delete_ms, w.day_delete_seconds
            );
            return;
        }
        let counted = format!("SELECT count(*) FROM ({QUERY}) AS q");
        for _ in 0..2 {
            println!("whole result:  {:.3} s", time_query(&client, QUERY).await);
            println!(
                "rows counted:  {:.3} s",
                time_query(&client, &counted).await
            );
        }
        return;
    }
    println!(
        "telemetry: {} rows, {} devices, one reading per device every {step_seconds} s over {DAYS} days",
        args.rows, args.devices
    );
    let workload = Workload::generate(&generator, args.rows);
    // A thousand of each point change: a mean over fewer is at the mercy
    // of one background checkpoint.
    let keys = row_keys(&generator, args.rows, 2000);
    let upsert_count = (args.rows / 10).max(2);
    let upsert = upsert_rows(&generator, args.rows, upsert_count);

    // tempora
    let workdir = tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap();
    let data_dir = match &args.load_only {
        Some(dir) => dir.clone(),
        None => workdir.path().join("tempora-data"),
    };
    let tempora = Tempora::start(&args.tempora, &data_dir);
    let (client, connection) = connect(tempora.port).await;
    client.batch_execute(CREATE).await.unwrap();
    client
        .batch_execute("SELECT create_hypertable('telemetry', 'time', chunk_time_interval => interval '1 day')")
        .await
        .unwrap();
    let (copy_rate, insert_rate) = load(&client, &workload).await;
    disconnect(client, connection).await;
    tempora.stop();
    let tempora = Tempora::start(&args.tempora, &data_dir);
    let (client, connection) = connect(tempora.port).await;
    let query_seconds = time_query(&client, QUERY).await;
    let bytes_on_disk = directory_size(&data_dir);
    let (key_seconds, upsert_seconds, rows_after_upsert) = keys_and_upsert(&client, &upsert).await;
    if args.load_only.is_some() {
        println!(
            "loaded {rows_after_upsert} rows into {}",
            data_dir.display()
        );
        disconnect(client, connection).await;
        tempora.stop();
        return;
    }
    let tempora_result = Timings {
        copy_rows_per_second: copy_rate,
        insert_rows_per_second: insert_rate,
        query_seconds,
        bytes_on_disk,
        key_seconds,
        upsert_seconds,
        rows_after_upsert,
        writes: writes(&client, &keys).await,
    };
    disconnect(client, connection).await;
    tempora.stop();

    // PostgreSQL
    let postgres = Postgres::start();
    let (client, connection) = connect(postgres.port).await;
    client.batch_execute(CREATE).await.unwrap();
    client
        .batch_execute("CREATE INDEX telemetry_time_idx ON telemetry (time DESC)")
        .await
        .unwrap();
    let (copy_rate, insert_rate) = load(&client, &workload).await;
    client
        .batch_execute("VACUUM ANALYZE telemetry")
        .await
        .unwrap();
    let query_seconds = time_query(&client, PG_QUERY).await;
    let bytes: i64 = client
        .query_one("SELECT pg_total_relation_size('telemetry')", &[])
        .await
        .unwrap()
        .get(0);
    let (key_seconds, upsert_seconds, rows_after_upsert) = keys_and_upsert(&client, &upsert).await;
    let postgres_result = Timings {
        copy_rows_per_second: copy_rate,
        insert_rows_per_second: insert_rate,
        query_seconds,
        bytes_on_disk: bytes as u64,
        key_seconds,
        upsert_seconds,
        rows_after_upsert,
        writes: writes(&client, &keys).await,
    };
    assert_eq!(
        tempora_result.rows_after_upsert, postgres_result.rows_after_upsert,
        "both servers must hold the same rows after the upsert"
    );
    assert_eq!(
        tempora_result.writes.day_rows, postgres_result.writes.day_rows,
        "both servers must delete the same day of rows"
    );
    disconnect(client, connection).await;
    drop(postgres);

    println!();
    println!(
        "{:<34} {:>14} {:>14} {:>10}",
        "", "tempora", "PostgreSQL 15", "ratio"
    );
    let line = |name: &str, t: f64, p: f64, ratio: f64| {
        println!("{name:<34} {t:>14.0} {p:>14.0} {ratio:>9.2}x")
    };
    line(
        "COPY rows/s",
        tempora_result.copy_rows_per_second,
        postgres_result.copy_rows_per_second,
        tempora_result.copy_rows_per_second / postgres_result.copy_rows_per_second,
    );
    line(
        "1000-row INSERT rows/s",
        tempora_result.insert_rows_per_second,
        postgres_result.insert_rows_per_second,
        tempora_result.insert_rows_per_second / postgres_result.insert_rows_per_second,
    );
    println!(
        "{:<34} {:>14.3} {:>14.3} {:>9.2}x",
        "hourly aggregate, last 7 days (s)",
        tempora_result.query_seconds,
        postgres_result.query_seconds,
        postgres_result.query_seconds / tempora_result.query_seconds
    );
    println!(
        "{:<34} {:>14} {:>14} {:>9.2}x",
        "bytes on disk",
        tempora_result.bytes_on_disk,
        postgres_result.bytes_on_disk,
        postgres_result.bytes_on_disk as f64 / tempora_result.bytes_on_disk as f64
    );
    println!(
        "{:<34} {:>14.3} {:>14.3} {:>9.2}x",
        "ADD PRIMARY KEY (device_id, time) (s)",
        tempora_result.key_seconds,
        postgres_result.key_seconds,
        postgres_result.key_seconds / tempora_result.key_seconds
    );
    line(
        &format!("upsert of {upsert_count} rows, rows/s"),
        upsert_count as f64 / tempora_result.upsert_seconds,
        upsert_count as f64 / postgres_result.upsert_seconds,
        postgres_result.upsert_seconds / tempora_result.upsert_seconds,
    );
    let (t, p) = (&tempora_result.writes, &postgres_result.writes);
    println!(
        "{:<34} {:>14.3} {:>14.3} {:>9.2}x",
        "point UPDATE by key (ms)",
        t.point_update_ms,
        p.point_update_ms,
        p.point_update_ms / t.point_update_ms
    );
    println!(
        "{:<34} {:>14.3} {:>14.3} {:>9.2}x",
        "point DELETE by key (ms)",
        t.point_delete_ms,
        p.point_delete_ms,
        p.point_delete_ms / t.point_delete_ms
    );
    println!(
        "{:<34} {:>14.3} {:>14.3} {:>9.2}x",
        format!("DELETE one day, {} rows (s)", t.day_rows),
        t.day_delete_seconds,
        p.day_delete_seconds,
        p.day_delete_seconds / t.day_delete_seconds
    );
    println!("(ratios: higher is better for tempora)");
}
