//! Crash test: writers insert (single statements and two-statement
//! transaction blocks), move a statement's rows to a new statement id with
//! UPDATE, and DELETE a statement's rows, while the server is killed with
//! SIGKILL at arbitrary moments; after each restart every acknowledged
//! statement's or block's rows are present exactly once, every acknowledged
//! UPDATE and DELETE is there in full, and nothing is partly there.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A small deterministic generator, so a failing cycle can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Default)]
struct Ledger {
    /// Statement id -> rows it wrote, for statements the server acknowledged.
    acknowledged: BTreeMap<i64, i64>,
    /// Statements sent and not acknowledged (in flight at the crash, or failed).
    unacknowledged: BTreeMap<i64, i64>,
    /// UPDATEs moving a statement's rows to a new id, not acknowledged: (from, to).
    moves_in_flight: Vec<(i64, i64)>,
    /// DELETEs of a statement's rows, not acknowledged.
    deletes_in_flight: Vec<i64>,
    /// Acknowledged UPDATEs and DELETEs, to show the test exercised them.
    updates_acknowledged: usize,
    deletes_acknowledged: usize,
    /// Acknowledgements of any kind, so a cycle can wait for progress.
    acknowledgements: usize,
}

/// `own`: acknowledged statements this writer alone may update or delete.
async fn writer(
    port: u16,
    first_statement: i64,
    seed: u64,
    mut own: Vec<i64>,
    ledger: Arc<Mutex<Ledger>>,
) {
    let connection_string = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres");
    let Ok((client, connection)) =
        tokio_postgres::connect(&connection_string, tokio_postgres::NoTls).await
    else {
        return;
    };
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut random = Lcg(seed);
    let mut statement = first_statement;
    loop {
        let action = random.below(6);
        if action >= 4 && !own.is_empty() {
            let target = own.swap_remove(random.below(own.len() as u64) as usize);
            let result = if action == 4 {
                // Move all the statement's rows to a new id (and change them).
                let to = statement;
                statement += 1;
                ledger.lock().unwrap().moves_in_flight.push((target, to));
                let result = client
                    .simple_query(&format!(
                        "UPDATE crash SET statement = {to}, value = value + 1 WHERE statement = {target}"
                    ))
                    .await;
                if result.is_ok() {
                    let mut ledger = ledger.lock().unwrap();
                    ledger.moves_in_flight.retain(|m| *m != (target, to));
                    let rows = ledger.acknowledged.remove(&target).unwrap_or(0);
                    ledger.acknowledged.insert(to, rows);
                    ledger.updates_acknowledged += 1;
                    ledger.acknowledgements += 1;
                    own.push(to);
                }
                result
            } else {
                ledger.lock().unwrap().deletes_in_flight.push(target);
                let result = client
                    .simple_query(&format!("DELETE FROM crash WHERE statement = {target}"))
                    .await;
                if result.is_ok() {
                    let mut ledger = ledger.lock().unwrap();
                    ledger.deletes_in_flight.retain(|d| *d != target);
                    ledger.acknowledged.remove(&target);
                    ledger.deletes_acknowledged += 1;
                    ledger.acknowledgements += 1;
                }
                result
            };
            if result.is_err() {
                return;
            }
            continue;
        }
        let rows = 1 + random.below(200) as i64;
        let day = random.below(20) as i64;
        let values: Vec<String> = (0..rows)
            .map(|row| {
                format!(
                    "('2024-01-01 00:00:00+00'::timestamptz + interval '{day} days' + interval '{row} seconds', {statement}, {row}, {})",
                    random.below(1000) as f64 / 10.0
                )
            })
            .collect();
        // Every third unit is a transaction block of two INSERTs (into
        // different chunks) acknowledged by its COMMIT; the rest are single
        // statements.
        let in_block = random.below(3) == 0 && rows > 1;
        let insert = |values: &[String]| {
            format!(
                "INSERT INTO crash (time, statement, row, value) VALUES {}",
                values.join(", ")
            )
        };
        ledger
            .lock()
            .unwrap()
            .unacknowledged
            .insert(statement, rows);
        let result = if in_block {
            let (first, second) = values.split_at(values.len() / 2);
            let second: Vec<String> = second
                .iter()
                .map(|v| v.replacen(&format!("interval '{day} days'"), "interval '25 days'", 1))
                .collect();
            async {
                client.simple_query("BEGIN").await?;
                client.simple_query(&insert(first)).await?;
                client.simple_query(&insert(&second)).await?;
                client.simple_query("COMMIT").await
            }
            .await
        } else {
            client.simple_query(&insert(&values)).await
        };
        match result {
            Ok(_) => {
                let mut ledger = ledger.lock().unwrap();
                ledger.unacknowledged.remove(&statement);
                ledger.acknowledged.insert(statement, rows);
                ledger.acknowledgements += 1;
                own.push(statement);
            }
            Err(_) => return,
        }
        statement += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_rows_survive_kill_9() {
    let cycles: u64 = std::env::var("CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    // A 1 MiB flush threshold makes checkpoints (segments, WAL trimming) happen
    // between crashes too.
    let args = ["--flush-threshold-mib", "1"];
    {
        let server = common::Server::start_with(&data_dir, &args);
        let client = server.connect().await;
        client
            .batch_execute(
                "CREATE TABLE crash (time timestamptz NOT NULL, statement bigint NOT NULL, row bigint NOT NULL, value double precision);
                 SELECT create_hypertable('crash', 'time', chunk_time_interval => interval '1 day');",
            )
            .await
            .unwrap();
    }
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut random = Lcg(0x5eed);
    for cycle in 0..cycles {
        let mut server = common::Server::start_with(&data_dir, &args);
        // Statements of earlier cycles are dealt out to this cycle's writers.
        let earlier: Vec<i64> = ledger
            .lock()
            .unwrap()
            .acknowledged
            .keys()
            .copied()
            .collect();
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let first = (cycle as i64 * 3 + w) * 1_000_000;
                let own: Vec<i64> = earlier
                    .iter()
                    .copied()
                    .skip(w as usize)
                    .step_by(3)
                    .collect();
                tokio::spawn(writer(
                    server.port,
                    first,
                    random.next(),
                    own,
                    ledger.clone(),
                ))
            })
            .collect();
        // Kill after a random number of acknowledgements, then a random
        // few milliseconds more, so the kill lands at an arbitrary point of
        // some statement. Counting acknowledgements instead of sleeping a
        // fixed time keeps the test meaningful on a slow or loaded machine.
        let start = ledger.lock().unwrap().acknowledgements;
        let wanted = start + 1 + random.below(12) as usize;
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while ledger.lock().unwrap().acknowledgements < wanted {
            assert!(
                std::time::Instant::now() < deadline,
                "cycle {cycle}: the writers acknowledged nothing for two minutes"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(random.below(40))).await;
        server.kill();
        for writer in writers {
            let _ = writer.await;
        }

        // Restart and check.
        let server = common::Server::start_with(&data_dir, &args);
        let client = server.connect().await;
        let rows = client
            .query(
                "SELECT statement, count(*), count(DISTINCT row) FROM crash GROUP BY statement",
                &[],
            )
            .await
            .unwrap();
        let mut present: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
        for row in rows {
            present.insert(row.get(0), (row.get(1), row.get(2)));
        }
        let mut ledger = ledger.lock().unwrap();
        // An UPDATE or DELETE cut off by the crash happened in full or not at all.
        let full = |statement: i64, rows: i64| present.get(&statement) == Some(&(rows, rows));
        for (from, to) in std::mem::take(&mut ledger.moves_in_flight) {
            let rows = ledger.acknowledged[&from];
            if full(to, rows) && !present.contains_key(&from) {
                ledger.acknowledged.remove(&from);
                ledger.acknowledged.insert(to, rows);
            } else {
                assert!(
                    full(from, rows) && !present.contains_key(&to),
                    "cycle {cycle}: UPDATE of statement {from} to {to} is partly there"
                );
            }
        }
        for statement in std::mem::take(&mut ledger.deletes_in_flight) {
            let rows = ledger.acknowledged[&statement];
            if present.contains_key(&statement) {
                assert!(
                    full(statement, rows),
                    "cycle {cycle}: DELETE of statement {statement} is partly there"
                );
            } else {
                ledger.acknowledged.remove(&statement);
            }
        }
        for (statement, expected) in &ledger.acknowledged {
            let found = present.get(statement).copied().unwrap_or((0, 0));
            assert_eq!(
                found,
                (*expected, *expected),
                "cycle {cycle}: acknowledged statement {statement} lost or duplicated rows"
            );
        }
        let unacknowledged: Vec<(i64, i64)> = ledger
            .unacknowledged
            .iter()
            .map(|(s, n)| (*s, *n))
            .collect();
        for (statement, expected) in unacknowledged {
            match present.get(&statement) {
                None => {}
                Some(found) => {
                    assert_eq!(
                        *found,
                        (expected, expected),
                        "cycle {cycle}: statement {statement} is partly present"
                    );
                    // It committed before the crash without its acknowledgement reaching us.
                    ledger.acknowledged.insert(statement, expected);
                }
            }
        }
        ledger.unacknowledged.clear();
        let known: BTreeSet<i64> = ledger.acknowledged.keys().copied().collect();
        for statement in present.keys() {
            assert!(
                known.contains(statement),
                "cycle {cycle}: rows of a statement never sent: {statement}"
            );
        }
        eprintln!(
            "cycle {cycle}: {} statements verified; {} updates, {} deletes acknowledged so far",
            known.len(),
            ledger.updates_acknowledged,
            ledger.deletes_acknowledged
        );
    }
    let ledger = ledger.lock().unwrap();
    assert!(
        ledger.acknowledged.len() > 20
            && ledger.updates_acknowledged > 5
            && ledger.deletes_acknowledged > 5,
        "the writers made too little progress to test anything"
    );
}
