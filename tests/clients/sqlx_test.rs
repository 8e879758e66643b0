//! sqlx (Rust), as an application uses it: a pool, statements prepared
//! and cached by name, typed binds and binary results, transactions, a
//! streamed fetch, database errors with their SQLSTATE. Compiled into
//! `crates/server/tests/drivers.rs`; tokio-postgres, the other Rust
//! driver, is what `crates/server/tests/clients.rs` drives throughout.

use futures::TryStreamExt;
use sqlx::Row;
use sqlx::postgres::types::PgInterval;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::types::JsonValue;
use sqlx::types::Uuid;
use sqlx::types::chrono::{DateTime, TimeZone, Utc};

async fn pool(port: u16) -> PgPool {
    PgPoolOptions::new()
        .max_connections(5)
        .connect(&format!("postgres://postgres@127.0.0.1:{port}/postgres"))
        .await
        .expect("sqlx connects")
}

pub(crate) async fn run(port: u16) {
    let pool = pool(port).await;
    sqlx::raw_sql(
        "CREATE TABLE readings (time timestamptz NOT NULL, device integer NOT NULL, \
             value double precision, tag uuid, meta jsonb);
         SELECT create_hypertable('readings', 'time', chunk_time_interval => interval '1 day');",
    )
    .execute(&pool)
    .await
    .expect("schema");

    // Typed binds, one statement prepared once and run 200 times.
    let start = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
    let tag = Uuid::parse_str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap();
    for i in 0..200i32 {
        let meta = serde_json_value(i);
        sqlx::query("INSERT INTO readings VALUES ($1, $2, $3, $4, $5)")
            .bind(
                Utc.timestamp_opt(start.timestamp() + 900 * i as i64, 0)
                    .unwrap(),
            )
            .bind(i % 4)
            .bind(if i % 10 == 0 {
                None
            } else {
                Some(i as f64 / 2.0)
            })
            .bind(tag)
            .bind(meta)
            .execute(&pool)
            .await
            .expect("insert");
    }

    // Results in binary, decoded into Rust types.
    let buckets: Vec<(DateTime<Utc>, i64, Option<f64>)> = sqlx::query_as(
        "SELECT time_bucket('1 day', time) AS day, count(*), avg(value) \
         FROM readings WHERE device = $1 GROUP BY day ORDER BY day",
    )
    .bind(1i32)
    .fetch_all(&pool)
    .await
    .expect("bucketed query");
    assert_eq!(buckets.len(), 3, "{buckets:?}");
    assert_eq!(buckets[0].0, start);
    assert_eq!(buckets.iter().map(|b| b.1).sum::<i64>(), 50);
    assert_eq!(buckets[0].2, Some(23.5));

    let row = sqlx::query(
        "SELECT tag, meta, meta->>'name' AS name, interval '1 day 02:00:00' AS span, \
                ARRAY[1, 2, 3]::bigint[] AS list, true AS flag, '\\x0102'::bytea AS bytes \
         FROM readings WHERE device = 2 ORDER BY time LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .expect("typed row");
    assert_eq!(row.get::<Uuid, _>("tag"), tag);
    assert_eq!(row.get::<JsonValue, _>("meta"), serde_json_value(2));
    assert_eq!(row.get::<String, _>("name"), "reading 2");
    let span: PgInterval = row.get("span");
    assert_eq!(
        (span.months, span.days, span.microseconds),
        (0, 1, 7_200_000_000)
    );
    assert_eq!(row.get::<Vec<i64>, _>("list"), vec![1, 2, 3]);
    assert!(row.get::<bool, _>("flag"));
    assert_eq!(row.get::<Vec<u8>, _>("bytes"), vec![1, 2]);

    // Streamed rows.
    let mut rows = sqlx::query("SELECT time, value FROM readings ORDER BY time").fetch(&pool);
    let mut streamed = 0;
    let mut nulls = 0;
    while let Some(row) = rows.try_next().await.expect("stream") {
        streamed += 1;
        nulls += row.get::<Option<f64>, _>("value").is_none() as usize;
    }
    drop(rows);
    assert_eq!((streamed, nulls), (200, 20));

    // Transactions: rolled back, then committed.
    let mut transaction = pool.begin().await.expect("begin");
    sqlx::query("DELETE FROM readings WHERE device = 0")
        .execute(&mut *transaction)
        .await
        .expect("delete in a block");
    transaction.rollback().await.expect("rollback");
    let mut transaction = pool.begin().await.expect("begin");
    let inserted = sqlx::query("INSERT INTO readings (time, device) VALUES ($1, 9)")
        .bind(start)
        .execute(&mut *transaction)
        .await
        .expect("insert in a block");
    assert_eq!(inserted.rows_affected(), 1);
    transaction.commit().await.expect("commit");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM readings")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(count, 201);

    // A database error carries its SQLSTATE, and the pool stays usable.
    let error = sqlx::query("INSERT INTO readings (time, device) VALUES ($1, NULL)")
        .bind(start)
        .execute(&pool)
        .await
        .expect_err("NULL into a NOT NULL column");
    assert_eq!(sqlstate(&error).as_deref(), Some("23502"), "{error}");
    let error = sqlx::query("SELECT * FROM no_such_table")
        .fetch_all(&pool)
        .await
        .expect_err("unknown table");
    assert_eq!(sqlstate(&error).as_deref(), Some("42P01"), "{error}");
    let one: i32 = sqlx::query_scalar("SELECT 1::integer")
        .fetch_one(&pool)
        .await
        .expect("after errors");
    assert_eq!(one, 1);
    pool.close().await;
}

/// The SQLSTATE of a database error.
fn sqlstate(error: &sqlx::Error) -> Option<String> {
    error
        .as_database_error()
        .and_then(|e| e.code().map(|c| c.into_owned()))
}

fn serde_json_value(i: i32) -> JsonValue {
    let mut map = sqlx::types::JsonValue::Object(Default::default());
    map["name"] = JsonValue::String(format!("reading {i}"));
    map["n"] = JsonValue::from(i);
    map
}
