//! Protocol-level behaviour through a real driver (tokio-postgres): extended
//! query with typed parameters and binary results, COPY in both directions,
//! restarts, clean shutdown, concurrency.

mod common;

use futures::{SinkExt, TryStreamExt};
use tokio_postgres::types::Type;

async fn setup(client: &tokio_postgres::Client) {
    client
        .batch_execute(
            "CREATE TABLE readings (time timestamptz NOT NULL, device text, value double precision, n integer);
             SELECT create_hypertable('readings', 'time', chunk_time_interval => interval '1 day');",
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn extended_protocol_binds_typed_parameters_and_returns_binary_values() {
    let server = common::Server::start();
    let client = server.connect().await;
    setup(&client).await;
    let insert = client
        .prepare("INSERT INTO readings (time, device, value, n) VALUES ($1, $2, $3, $4)")
        .await
        .unwrap();
    assert_eq!(
        insert.params(),
        &[Type::TIMESTAMPTZ, Type::TEXT, Type::FLOAT8, Type::INT4]
    );
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_704_067_200);
    for n in 0..5 {
        client
            .execute(&insert, &[&time, &format!("d{n}"), &(n as f64 * 1.5), &n])
            .await
            .unwrap();
    }
    let rows = client
        .query(
            "SELECT device, value, n, time FROM readings WHERE n >= $1 ORDER BY n",
            &[&3i32],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get::<_, String>(0), "d3");
    assert_eq!(rows[0].get::<_, f64>(1), 4.5);
    assert_eq!(rows[1].get::<_, i32>(2), 4);
    assert_eq!(rows[1].get::<_, std::time::SystemTime>(3), time);
    // A bad parameter value is a PostgreSQL error, not a crash.
    let error = client
        .query(
            "SELECT count(*) FROM readings WHERE n = $1::integer",
            &[&"x"],
        )
        .await
        .unwrap_err();
    assert!(
        error.as_db_error().is_some() || error.to_string().contains("error"),
        "{error}"
    );
    // The connection still works afterwards.
    let count: i64 = client
        .query_one("SELECT count(*) FROM readings", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 5);
}

#[tokio::test]
async fn copy_in_and_out_and_a_bad_row_stores_nothing() {
    let server = common::Server::start();
    let client = server.connect().await;
    setup(&client).await;
    let sink = client
        .copy_in("COPY readings (time, device, value, n) FROM STDIN")
        .await
        .unwrap();
    futures::pin_mut!(sink);
    let mut data = String::new();
    for i in 0..1000 {
        data.push_str(&format!(
            "2024-01-0{} 00:00:{:02}+00\tdev{}\t{}.5\t{}\n",
            1 + i % 3,
            i % 60,
            i % 7,
            i,
            i
        ));
    }
    data.push_str("2024-01-01 00:00:00+00\t\\N\t\\N\t\\N\n");
    sink.send(bytes::Bytes::from(data)).await.unwrap();
    let copied = sink.finish().await.unwrap();
    assert_eq!(copied, 1001);

    // A bad value on line 3 fails the whole COPY, with its line number, and stores nothing.
    let sink = client
        .copy_in("COPY readings (time, device, value, n) FROM STDIN WITH (FORMAT csv)")
        .await
        .unwrap();
    futures::pin_mut!(sink);
    let bad = "2024-01-01 00:00:00+00,a,1,1\n2024-01-01 00:00:00+00,b,2,2\n2024-01-01 00:00:00+00,c,x,3\n";
    sink.send(bytes::Bytes::from(bad)).await.unwrap();
    let error = sink.finish().await.unwrap_err();
    let db = error.as_db_error().expect("a database error");
    assert_eq!(db.code().code(), "22P02");
    assert!(db.where_().unwrap_or_default().contains("line 3"), "{db:?}");
    let count: i64 = client
        .query_one("SELECT count(*) FROM readings", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1001);

    let stream = client
        .copy_out("COPY (SELECT n, device FROM readings WHERE n < 3 ORDER BY n) TO STDOUT WITH (FORMAT csv)")
        .await
        .unwrap();
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
    let text: String = chunks
        .iter()
        .map(|c| String::from_utf8_lossy(c).to_string())
        .collect();
    assert_eq!(text, "0,dev0\n1,dev1\n2,dev2\n");
}

#[tokio::test]
async fn rows_survive_restart_and_clean_shutdown() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    {
        let server = common::Server::start_in(&data_dir);
        let client = server.connect().await;
        setup(&client).await;
        client
            .batch_execute(
                "INSERT INTO readings VALUES ('2024-01-01', 'a', 1, 1), ('2024-01-02', 'b', 2, 2)",
            )
            .await
            .unwrap();
        // Dropped here: SIGKILL, nothing flushed but the WAL.
    }
    {
        let mut server = common::Server::start_in(&data_dir);
        let client = server.connect().await;
        let count: i64 = client
            .query_one("SELECT count(*) FROM readings", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(count, 2);
        client
            .batch_execute("INSERT INTO readings VALUES ('2024-01-03', 'c', 3, 3)")
            .await
            .unwrap();
        drop(client);
        assert!(server.terminate(), "SIGTERM should stop the server cleanly");
    }
    // After a clean shutdown the rows are in segment files and the WAL is trimmed.
    let segments = std::fs::read_dir(data_dir.join("segments"))
        .unwrap()
        .count();
    assert_eq!(segments, 3);
    let server = common::Server::start_in(&data_dir);
    let client = server.connect().await;
    let rows = client
        .query("SELECT device FROM readings ORDER BY time", &[])
        .await
        .unwrap();
    let devices: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(devices, ["a", "b", "c"]);
}

/// The rows of `sql` in text format.
async fn text_rows(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    common::text_rows(client, sql).await.unwrap()
}

/// Every column type goes to segment files at a checkpoint and reads back
/// the same, by scans, filters and point reads by key (an interval column
/// once made every checkpoint fail: Parquet has no interval of months,
/// days and microseconds).
#[tokio::test]
async fn every_column_type_survives_a_checkpoint() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let all = "SELECT * FROM every ORDER BY id";
    let before = {
        let mut server = common::Server::start_in(&data_dir);
        let client = server.connect().await;
        client
            .batch_execute(
                "CREATE TABLE every (time timestamptz NOT NULL, id bigint PRIMARY KEY, s smallint, i integer,
                    r real, d double precision, n numeric(12,3), big numeric(30,5), t text, v varchar(8), b boolean,
                    ts timestamp, day date, span interval, u uuid, j jsonb, js json, raw bytea);
                 SELECT create_hypertable('every', 'time', chunk_time_interval => interval '1 day');
                 INSERT INTO every SELECT timestamptz '2024-03-01' + g * interval '7 hours', g,
                    CASE WHEN g % 5 = 1 THEN NULL ELSE g - 50 END, g * 1000, g / 3.0, g * -1.25, g * 1.001,
                    g * 123456789012.5, 'text ' || g, 'v' || g, g % 2 = 0, timestamp '2020-02-29' + g * interval '1 day',
                    date '1999-12-31' + g, CASE WHEN g % 5 = 2 THEN NULL ELSE g * interval '1 day 1 second' - interval '1 month' END,
                    CASE WHEN g % 5 = 3 THEN NULL ELSE ('00000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid END,
                    ('{\"g\": ' || g || '}')::jsonb, '[1, 2]'::json, decode(lpad(to_hex(g), 4, '0'), 'hex')
                 FROM generate_series(1, 40) AS g;",
            )
            .await
            .unwrap();
        let before = text_rows(&client, all).await;
        assert_eq!(before.len(), 40);
        drop(client);
        assert!(server.terminate(), "SIGTERM should stop the server cleanly");
        before
    };
    // The final checkpoint wrote the rows to segments and emptied the WAL
    // (a file header of 16 bytes is all it holds).
    let segments = std::fs::read_dir(data_dir.join("segments"))
        .unwrap()
        .count();
    assert!(segments > 1, "the checkpoint wrote the rows to segments");
    for file in std::fs::read_dir(data_dir.join("wal")).unwrap() {
        let file = file.unwrap();
        let length = file.metadata().unwrap().len();
        assert!(
            length <= 16,
            "{:?} holds {length} bytes after a clean shutdown",
            file.path()
        );
    }
    let server = common::Server::start_in(&data_dir);
    let client = server.connect().await;
    assert_eq!(text_rows(&client, all).await, before);
    // Filters on the interval column, evaluated over the segment's bytes.
    let spans = text_rows(
        &client,
        "SELECT id, span FROM every WHERE span = interval '-1 mons +8 days 00:00:08' OR span IS NULL ORDER BY id",
    )
    .await;
    let ids: Vec<_> = spans.iter().map(|r| r[0].clone().unwrap()).collect();
    assert_eq!(ids, ["2", "7", "8", "12", "17", "22", "27", "32", "37"]);
    // Point reads by key decode one row of every column from its pages.
    for id in [1, 2, 3, 20, 40] {
        let row = text_rows(&client, &format!("SELECT * FROM every WHERE id = {id}")).await;
        assert_eq!(row, vec![before[id - 1].clone()], "row {id}");
    }
    client
        .batch_execute("UPDATE every SET s = 7 WHERE id = 3; DELETE FROM every WHERE id = 4")
        .await
        .unwrap();
    let rows = text_rows(&client, all).await;
    assert_eq!(rows.len(), 39);
    let mut changed = before[2].clone();
    changed[2] = Some("7".to_owned());
    assert_eq!(rows[2], changed, "the UPDATE kept every other column");
    assert_eq!(rows[3], before[4]);
}

/// The embedded default keeps its data in `./tempora-data`, a relative
/// path: rows a checkpoint wrote to segments there read back after a
/// restart (the scan once asked for `%2E/tempora-data/...` and failed).
#[tokio::test]
async fn the_default_data_dir_reads_its_segments_after_a_restart() {
    let cwd = tempfile::tempdir().unwrap();
    {
        let mut server = common::Server::start_on_the_default_data_dir(cwd.path());
        let client = server.connect().await;
        setup(&client).await;
        client
            .batch_execute(
                "INSERT INTO readings VALUES ('2024-01-01', 'a', 1, 1), ('2024-01-02', 'b', 2, 2)",
            )
            .await
            .unwrap();
        drop(client);
        assert!(server.terminate(), "SIGTERM should stop the server cleanly");
    }
    assert!(
        cwd.path()
            .join("tempora-data/segments")
            .read_dir()
            .unwrap()
            .count()
            > 1
    );
    let server = common::Server::start_on_the_default_data_dir(cwd.path());
    let client = server.connect().await;
    let rows = client
        .query("SELECT device FROM readings ORDER BY time", &[])
        .await
        .unwrap();
    let devices: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(devices, ["a", "b"]);
}

#[tokio::test]
async fn now_minus_interval_excludes_old_chunks() {
    let server = common::Server::start();
    let client = server.connect().await;
    setup(&client).await;
    client
        .batch_execute(
            "INSERT INTO readings VALUES (now() - interval '1 hour', 'recent', 1, 1);
             INSERT INTO readings VALUES ('2020-01-01', 'old', 2, 2), ('2021-01-01', 'older', 3, 3);",
        )
        .await
        .unwrap();
    let plan: Vec<String> = client
        .query(
            "EXPLAIN SELECT device FROM readings WHERE time > now() - interval '48 hours'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let scan = plan
        .iter()
        .find(|l| l.contains("ChunkScanExec"))
        .expect("a chunk scan");
    assert!(scan.contains("chunks=1/3"), "{plan:#?}");
    let rows = client
        .query(
            "SELECT device FROM readings WHERE time > now() - interval '48 hours'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), "recent");
}

#[tokio::test]
async fn many_sessions_write_and_read_concurrently() {
    let server = common::Server::start();
    let client = server.connect().await;
    setup(&client).await;
    let mut tasks = Vec::new();
    for session in 0..16 {
        let client = server.connect().await;
        tasks.push(tokio::spawn(async move {
            for i in 0..20 {
                let time =
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_704_067_200 + i * 60);
                client
                    .execute(
                        "INSERT INTO readings (time, device, value, n) VALUES ($1, $2, 0, $3)",
                        &[&time, &format!("s{session}"), &(i as i32)],
                    )
                    .await
                    .unwrap();
                let _: i64 = client
                    .query_one("SELECT count(*) FROM readings", &[])
                    .await
                    .unwrap()
                    .get(0);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let count: i64 = client
        .query_one(
            "SELECT count(DISTINCT device) * 1000 + count(*) FROM readings",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 16 * 1000 + 320);
}

#[tokio::test]
async fn simple_query_runs_statements_until_the_first_error() {
    let server = common::Server::start();
    let client = server.connect().await;
    let error = client
        .batch_execute("CREATE TABLE a (x integer); INSERT INTO a VALUES (1); SELECT * FROM nope; INSERT INTO a VALUES (2)")
        .await
        .unwrap_err();
    assert_eq!(error.as_db_error().unwrap().code().code(), "42P01");
    let count: i64 = client
        .query_one("SELECT count(*) FROM a", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1);
    // Empty queries are answered, not rejected.
    client.batch_execute(";").await.unwrap();
}

#[tokio::test]
async fn psql_answers_select_1() {
    let server = common::Server::start();
    let output = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-U",
            "postgres",
            "-At",
            "-c",
            "select 1",
        ])
        .output();
    match output {
        Ok(output) => {
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "1");
        }
        Err(error) => panic!("psql is needed for this test (scripts/test.sh installs it): {error}"),
    }
}

#[tokio::test]
async fn unknown_roles_and_databases_are_refused() {
    let server = common::Server::start();
    let wrong_db = format!(
        "host=127.0.0.1 port={} user=postgres dbname=nope",
        server.port
    );
    let error = tokio_postgres::connect(&wrong_db, tokio_postgres::NoTls)
        .await
        .err()
        .expect("refused");
    assert_eq!(error.as_db_error().unwrap().code().code(), "3D000");
    let wrong_user = format!(
        "host=127.0.0.1 port={} user=mallory dbname=postgres",
        server.port
    );
    let error = tokio_postgres::connect(&wrong_user, tokio_postgres::NoTls)
        .await
        .err()
        .expect("refused");
    assert_eq!(error.as_db_error().unwrap().code().code(), "28000");
}

#[tokio::test]
async fn timescaledb_functions_describe_their_columns_in_the_extended_protocol() {
    let server = common::Server::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE m (time timestamptz NOT NULL, v double precision)")
        .await
        .unwrap();
    // tokio-postgres' query() prepares, describes and executes: Describe must
    // announce the columns the call then returns.
    let rows = client
        .query(
            "SELECT * FROM create_hypertable('m', 'time', chunk_time_interval => interval '1 day')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows[0].columns().len(), 4);
    assert_eq!(rows[0].get::<_, i32>(0), 1);
    assert_eq!(rows[0].get::<_, String>(2), "m");
    assert!(rows[0].get::<_, bool>(3));
    client
        .execute("INSERT INTO m VALUES ('2024-01-01', 1)", &[])
        .await
        .unwrap();
    let chunks = client.query("SELECT show_chunks('m')", &[]).await.unwrap();
    assert_eq!(
        chunks[0].get::<_, String>(0),
        "_timescaledb_internal._hyper_1_1_chunk"
    );
}

/// Bytes that are not UTF-8 fail a COPY as PostgreSQL reports them: 22021,
/// the bad sequence's bytes, and the line, in text and CSV alike.
#[tokio::test]
async fn copy_data_that_is_not_utf8_fails_with_22021() {
    let server = common::Server::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE u (a text, b integer)")
        .await
        .unwrap();
    for (options, data, message, context) in [
        (
            "",
            &b"a\t1\nab\xff\t2\n"[..],
            "invalid byte sequence for encoding \"UTF8\": 0xff",
            "COPY u, line 2",
        ),
        (
            "",
            b"ab\xe9 x\t1\n",
            "invalid byte sequence for encoding \"UTF8\": 0xe9 0x20 0x78",
            "COPY u, line 1",
        ),
        (
            "",
            b"a\\\\tb\xc3\t1\n",
            "invalid byte sequence for encoding \"UTF8\": 0xc3 0x09",
            "COPY u, line 1",
        ),
        (
            " (FORMAT csv)",
            b"x,1\ny,2\n\"q\xff\",3\n",
            "invalid byte sequence for encoding \"UTF8\": 0xff",
            "COPY u, line 3",
        ),
        (
            " (FORMAT csv)",
            b"x,1\n\"q\xc3\",3\n",
            "invalid byte sequence for encoding \"UTF8\": 0xc3 0x22",
            "COPY u, line 2",
        ),
    ] {
        let sink = client
            .copy_in(&format!("COPY u FROM STDIN{options}"))
            .await
            .unwrap();
        futures::pin_mut!(sink);
        sink.send(bytes::Bytes::copy_from_slice(data))
            .await
            .unwrap();
        let error = sink.finish().await.unwrap_err();
        let db = error.as_db_error().expect("a database error");
        assert_eq!(
            (db.code().code(), db.message(), db.where_()),
            ("22021", message, Some(context))
        );
    }
    let count: i64 = client
        .query_one("SELECT count(*) FROM u", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0);
}

#[tokio::test]
async fn copy_rows_with_too_many_or_too_few_fields_fail_with_22p04() {
    let server = common::Server::start();
    let client = server.connect().await;
    setup(&client).await;
    for (data, message) in [
        (
            "2024-01-01 00:00:00+00\ta\t1\t1\textra\n",
            "extra data after last expected column",
        ),
        (
            "2024-01-01 00:00:00+00\ta\n",
            "missing data for column \"value\"",
        ),
    ] {
        let sink = client
            .copy_in("COPY readings (time, device, value, n) FROM STDIN")
            .await
            .unwrap();
        futures::pin_mut!(sink);
        sink.send(bytes::Bytes::from(data)).await.unwrap();
        let error = sink.finish().await.unwrap_err();
        let db = error.as_db_error().expect("a database error");
        assert_eq!(db.code().code(), "22P04");
        assert_eq!(db.message(), message);
    }
    let count: i64 = client
        .query_one("SELECT count(*) FROM readings", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0);
}

/// A bare protocol connection, to read what drivers hide: the transaction
/// status each ReadyForQuery carries.
struct RawConnection {
    stream: tokio::net::TcpStream,
}

impl RawConnection {
    async fn open(port: u16) -> RawConnection {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let mut body = 196608i32.to_be_bytes().to_vec();
        for (key, value) in [("user", "postgres"), ("database", "postgres")] {
            body.extend_from_slice(key.as_bytes());
            body.push(0);
            body.extend_from_slice(value.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut message = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        message.extend_from_slice(&body);
        stream.write_all(&message).await.unwrap();
        let mut connection = RawConnection { stream };
        connection.until_ready().await;
        connection
    }

    async fn send(&mut self, kind: u8, body: &[u8]) {
        use tokio::io::AsyncWriteExt;
        let mut message = vec![kind];
        message.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        message.extend_from_slice(body);
        self.stream.write_all(&message).await.unwrap();
    }

    /// Reads messages up to ReadyForQuery; returns its status and the
    /// SQLSTATEs of the errors before it.
    async fn until_ready(&mut self) -> (char, Vec<String>) {
        let (status, _, errors) = self.answers_until_ready().await;
        (status, errors)
    }

    /// Like `until_ready`, also with the kinds of the messages before it.
    async fn answers_until_ready(&mut self) -> (char, Vec<u8>, Vec<String>) {
        use tokio::io::AsyncReadExt;
        let mut errors = Vec::new();
        let mut kinds = Vec::new();
        loop {
            let kind = self.stream.read_u8().await.unwrap();
            let length = self.stream.read_i32().await.unwrap() as usize;
            let mut body = vec![0u8; length - 4];
            self.stream.read_exact(&mut body).await.unwrap();
            kinds.push(kind);
            match kind {
                b'Z' => return (body[0] as char, kinds, errors),
                b'E' => {
                    let code = body
                        .split(|b| *b == 0)
                        .find(|field| field.first() == Some(&b'C'))
                        .map(|field| String::from_utf8_lossy(&field[1..]).into_owned())
                        .unwrap_or_default();
                    errors.push(code);
                }
                _ => {}
            }
        }
    }

    /// Reads `count` messages: their kinds (`b'C'`: CommandComplete...).
    async fn kinds(&mut self, count: usize) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut kinds = Vec::new();
        for _ in 0..count {
            let kind = self.stream.read_u8().await.unwrap();
            let length = self.stream.read_i32().await.unwrap() as usize;
            let mut body = vec![0u8; length - 4];
            self.stream.read_exact(&mut body).await.unwrap();
            kinds.push(kind);
        }
        kinds
    }

    /// Parse of the unnamed statement, without parameter types.
    async fn parse(&mut self, sql: &str) {
        let mut parse = vec![0u8];
        parse.extend_from_slice(sql.as_bytes());
        parse.extend_from_slice(&[0, 0, 0]);
        self.send(b'P', &parse).await;
    }

    /// Bind of the unnamed statement with text parameters, then Execute.
    async fn bind_execute(&mut self, parameters: &[&str]) {
        let mut bind = vec![0u8, 0, 0, 0];
        bind.extend_from_slice(&(parameters.len() as i16).to_be_bytes());
        for parameter in parameters {
            bind.extend_from_slice(&(parameter.len() as i32).to_be_bytes());
            bind.extend_from_slice(parameter.as_bytes());
        }
        bind.extend_from_slice(&[0, 0]);
        self.send(b'B', &bind).await;
        self.send(b'E', &[0, 0, 0, 0, 0]).await;
    }

    /// A simple query: the status after it and its errors' SQLSTATEs.
    async fn query(&mut self, sql: &str) -> (char, Vec<String>) {
        let mut body = sql.as_bytes().to_vec();
        body.push(0);
        self.send(b'Q', &body).await;
        self.until_ready().await
    }

    /// Parse/Bind/Execute/Sync of one statement without parameters.
    async fn extended(&mut self, sql: &str) -> (char, Vec<String>) {
        self.parse(sql).await;
        self.send(b'B', &[0, 0, 0, 0, 0, 0, 0, 0]).await;
        self.send(b'E', &[0, 0, 0, 0, 0]).await;
        self.send(b'S', &[]).await;
        self.until_ready().await
    }
}

/// Answers to the extended protocol wait for the Sync or Flush that ends
/// the pipeline, and then come all at once (as PostgreSQL's do); a COPY's
/// CopyInResponse goes out at once, since the client waits for it.
#[tokio::test]
async fn extended_answers_wait_for_sync_or_flush() {
    use tokio::io::AsyncReadExt;
    let server = common::Server::start();
    let mut raw = RawConnection::open(server.port).await;
    raw.query("CREATE TABLE answered (n integer)").await;
    raw.parse("SELECT n FROM answered WHERE n > $1").await;
    raw.send(b'D', b"S\0").await;
    raw.send(b'B', &[0, 0, 0, 0, 0, 1, 0, 0, 0, 1, b'1', 0, 0])
        .await;
    raw.send(b'E', &[0, 0, 0, 0, 0]).await;
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(
        std::time::Duration::from_millis(300),
        raw.stream.read(&mut byte),
    )
    .await;
    assert!(early.is_err(), "nothing is sent before the Sync or Flush");
    raw.send(b'H', &[]).await;
    // ParseComplete, ParameterDescription, RowDescription, BindComplete,
    // CommandComplete.
    assert_eq!(raw.kinds(5).await, b"1tT2C");
    raw.send(b'S', &[]).await;
    assert_eq!(raw.until_ready().await, ('I', vec![]));
    // COPY through the extended protocol, its Sync sent before the data (and
    // ignored in copy-in mode: another follows the CopyDone, as
    // tokio-postgres sends it).
    raw.parse("COPY answered FROM STDIN").await;
    raw.send(b'B', &[0, 0, 0, 0, 0, 0, 0, 0]).await;
    raw.send(b'E', &[0, 0, 0, 0, 0]).await;
    raw.send(b'S', &[]).await;
    let copy_in = tokio::time::timeout(std::time::Duration::from_secs(20), raw.kinds(3)).await;
    assert_eq!(copy_in.expect("CopyInResponse sent at once"), b"12G");
    raw.send(b'd', b"7\n8\n").await;
    raw.send(b'c', &[]).await;
    raw.send(b'S', &[]).await;
    let (status, kinds, errors) = raw.answers_until_ready().await;
    assert_eq!((status, kinds, errors), ('I', b"CZ".to_vec(), vec![]));
    assert_eq!(raw.extended("SELECT 1").await, ('I', vec![]));
}

/// The messages of one Sync are one implicit transaction: a pipeline of
/// INSERTs answers each message in order (the CommandComplete of a staged
/// INSERT comes before the next message's answer, at a Flush, or after
/// the commit at Sync), and a failure in it leaves none of its rows.
#[tokio::test]
async fn a_pipeline_of_inserts_commits_at_sync_all_or_nothing() {
    let server = common::Server::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE piped (n integer NOT NULL)")
        .await
        .unwrap();
    let count = || async {
        let row = client
            .query_one("SELECT count(*) FROM piped", &[])
            .await
            .unwrap();
        row.get::<_, i64>(0)
    };
    let mut raw = RawConnection::open(server.port).await;
    raw.parse("INSERT INTO piped VALUES ($1)").await;
    for n in ["1", "2", "3"] {
        raw.bind_execute(&[n]).await;
    }
    raw.send(b'S', &[]).await;
    assert_eq!(raw.kinds(8).await, b"12C2C2CZ");
    assert_eq!(count().await, 3);

    // A bad value in the third INSERT: the first two are not kept, and the
    // messages after the error are skipped up to Sync.
    raw.bind_execute(&["10"]).await;
    raw.bind_execute(&["11"]).await;
    raw.bind_execute(&["eleven"]).await;
    raw.bind_execute(&["12"]).await;
    raw.send(b'S', &[]).await;
    assert_eq!(raw.kinds(6).await, b"2C2C2E");
    assert_eq!(raw.until_ready().await, ('I', vec![]));
    assert_eq!(count().await, 3);

    // Flush sends the answers so far; the row commits at Sync.
    raw.bind_execute(&["20"]).await;
    raw.send(b'H', &[]).await;
    assert_eq!(raw.kinds(2).await, b"2C");
    raw.send(b'S', &[]).await;
    assert_eq!(raw.kinds(1).await, b"Z");
    assert_eq!(count().await, 4);

    // An UPDATE commits the INSERTs before it and runs on its own.
    raw.bind_execute(&["30"]).await;
    raw.parse("UPDATE piped SET n = n + 1 WHERE n = $1").await;
    raw.bind_execute(&["30"]).await;
    raw.send(b'S', &[]).await;
    assert_eq!(raw.kinds(6).await, b"2C12CZ");
    let rows = client
        .query("SELECT n FROM piped WHERE n > 20", &[])
        .await
        .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>(),
        [31]
    );
}

/// A pipeline's INSERTs run when a message other than their Binds and
/// Executes comes (here a Flush): another session's ALTER after that makes
/// the commit at Sync fail (40001), after the CommandComplete the Flush
/// sent, as PostgreSQL sends one before its commit. Without the Flush, the
/// INSERTs run at the Sync, against the table as altered. Either way the
/// table stays readable; the failed pipeline left nothing.
#[tokio::test]
async fn pipelined_inserts_run_at_the_next_other_message() {
    let server = common::Server::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE altered (x integer); INSERT INTO altered VALUES (0)")
        .await
        .unwrap();
    let mut raw = RawConnection::open(server.port).await;
    raw.parse("INSERT INTO altered VALUES ($1)").await;
    raw.bind_execute(&["1"]).await;
    raw.bind_execute(&["2"]).await;
    raw.send(b'H', &[]).await;
    assert_eq!(raw.kinds(5).await, b"12C2C".to_vec());
    client
        .batch_execute("ALTER TABLE altered ADD COLUMN y text")
        .await
        .unwrap();
    raw.send(b'S', &[]).await;
    assert_eq!(
        raw.answers_until_ready().await,
        ('I', b"EZ".to_vec(), vec!["40001".to_owned()])
    );
    // No Flush: the INSERTs run at Sync, after this ALTER.
    raw.parse("INSERT INTO altered VALUES ($1)").await;
    raw.bind_execute(&["3"]).await;
    raw.bind_execute(&["4"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    client
        .batch_execute("ALTER TABLE altered ADD COLUMN z text")
        .await
        .unwrap();
    raw.send(b'S', &[]).await;
    assert_eq!(
        raw.answers_until_ready().await,
        ('I', b"12C2CZ".to_vec(), vec![])
    );
    let rows = client
        .query("SELECT x, y, z FROM altered ORDER BY x", &[])
        .await
        .unwrap();
    let rows: Vec<(i32, Option<String>, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(rows, [(0, None, None), (3, None, None), (4, None, None)]);
}

/// The Executes of a pipelined INSERT run as one statement; when a row
/// fails, the rows before it are answered, then its error, and nothing
/// after it (as PostgreSQL skips to the Sync); the Sync discards the whole
/// pipeline. A pipeline without errors stores every row once.
#[tokio::test]
async fn a_failing_row_of_a_pipelined_insert_answers_as_postgres_does() {
    let server = common::Server::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE piped (n integer NOT NULL, s text)")
        .await
        .unwrap();
    let mut raw = RawConnection::open(server.port).await;
    raw.parse("INSERT INTO piped VALUES ($1, 'a')").await;
    raw.bind_execute(&["1"]).await;
    raw.bind_execute(&["2"]).await;
    raw.bind_execute(&["x"]).await;
    raw.bind_execute(&["4"]).await;
    raw.send(b'S', &[]).await;
    assert_eq!(
        raw.answers_until_ready().await,
        ('I', b"12C2C2EZ".to_vec(), vec!["22P02".to_owned()])
    );
    // Long pipelines run in parts of 4 096 rows: across them, the answers
    // are as for one, and nothing of a failed pipeline stays.
    raw.parse("INSERT INTO piped (n) VALUES ($1)").await;
    for n in 0..10_000 {
        raw.bind_execute(&[&n.to_string()]).await;
    }
    raw.send(b'S', &[]).await;
    let (status, kinds, errors) = raw.answers_until_ready().await;
    assert_eq!((status, errors), ('I', vec![]));
    let mut expected = b"1".to_vec();
    expected.extend(b"2C".repeat(10_000));
    expected.push(b'Z');
    assert_eq!(kinds, expected);
    raw.parse("INSERT INTO piped (n) VALUES ($1)").await;
    for n in 0..6000 {
        let value = if n == 5000 {
            "x".to_owned()
        } else {
            n.to_string()
        };
        raw.bind_execute(&[&value]).await;
    }
    raw.send(b'S', &[]).await;
    let (status, kinds, errors) = raw.answers_until_ready().await;
    assert_eq!((status, errors), ('I', vec!["22P02".to_owned()]));
    let mut expected = b"1".to_vec();
    expected.extend(b"2C".repeat(5000));
    expected.extend(b"2EZ");
    assert_eq!(kinds, expected);
    // The same row failing in a part that fills up, run at its Execute.
    raw.parse("INSERT INTO piped (n) VALUES ($1)").await;
    for n in 0..10_000 {
        let value = if n == 5000 {
            "x".to_owned()
        } else {
            n.to_string()
        };
        raw.bind_execute(&[&value]).await;
    }
    raw.send(b'S', &[]).await;
    let (status, kinds, errors) = raw.answers_until_ready().await;
    assert_eq!((status, errors), ('I', vec!["22P02".to_owned()]));
    assert_eq!(kinds, expected);
    let row = client
        .query_one("SELECT count(*), count(DISTINCT n), sum(n) FROM piped", &[])
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, i64>(0),
            row.get::<_, i64>(1),
            row.get::<_, i64>(2)
        ),
        (10_000, 10_000, 49_995_000)
    );
}

/// Binary parameters of a pipelined INSERT go into their columns without
/// text in between (see `binary::append_binary`): the values stored are
/// the ones sent, and a value that does not decode fails its own Execute.
#[tokio::test]
async fn binary_parameters_of_a_pipelined_insert_are_stored_as_sent() {
    type Row = (i32, f64, i64, &'static [u8], &'static str);
    async fn pipeline(raw: &mut RawConnection, rows: &[Row]) -> (char, Vec<u8>, Vec<String>) {
        let mut parse = vec![0u8];
        parse.extend_from_slice(b"INSERT INTO sent VALUES ($1, $2, $3, $4, $5)\0");
        parse.extend_from_slice(&5i16.to_be_bytes());
        for oid in [23i32, 701, 1184, 3802, 25] {
            parse.extend_from_slice(&oid.to_be_bytes());
        }
        raw.send(b'P', &parse).await;
        for (n, x, t, j, text) in rows {
            // All parameters binary; results in text.
            let mut bind = vec![0u8, 0, 0, 1, 0, 1, 0, 5];
            for value in [
                &n.to_be_bytes()[..],
                &x.to_be_bytes()[..],
                &t.to_be_bytes()[..],
                j,
                text.as_bytes(),
            ] {
                bind.extend_from_slice(&(value.len() as i32).to_be_bytes());
                bind.extend_from_slice(value);
            }
            bind.extend_from_slice(&[0, 0]);
            raw.send(b'B', &bind).await;
            raw.send(b'E', &[0, 0, 0, 0, 0]).await;
        }
        raw.send(b'S', &[]).await;
        raw.answers_until_ready().await
    }
    let server = common::Server::start();
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE sent (n integer, x double precision, t timestamptz, j jsonb, s text)",
        )
        .await
        .unwrap();
    let mut raw = RawConnection::open(server.port).await;
    let first: Row = (1, 1.5, 0, b"\x01{\"b\": 1, \"a\": 2}", "caf\u{e9}");
    let second: Row = (2, f64::NAN, 86_400_000_001, b"\x01[]", "");
    let bad_version: Row = (3, -0.0, -1, b"\x02{}", "x");
    let infinite_time: Row = (4, 1e300, i64::MAX, b"\x01null", "x");
    for (bad, code) in [(bad_version, "22P03"), (infinite_time, "22008")] {
        let (status, kinds, errors) = pipeline(&mut raw, &[first, second, bad, first]).await;
        assert_eq!((status, errors), ('I', vec![code.to_owned()]));
        assert_eq!(kinds, b"12C2C2EZ");
    }
    // Nothing of the failed pipelines stays; a good one stores what it sent.
    assert!(text_rows(&client, "SELECT * FROM sent").await.is_empty());
    assert_eq!(
        pipeline(&mut raw, &[first, second]).await,
        ('I', b"12C2CZ".to_vec(), vec![])
    );
    let text = |v: &str| Some(v.to_owned());
    assert_eq!(
        text_rows(&client, "SELECT n, x, t, j, s FROM sent ORDER BY n").await,
        vec![
            vec![
                text("1"),
                text("1.5"),
                text("2000-01-01 00:00:00+00"),
                text("{\"a\": 2, \"b\": 1}"),
                text("caf\u{e9}")
            ],
            vec![
                text("2"),
                text("NaN"),
                text("2000-01-02 00:00:00.000001+00"),
                text("[]"),
                text("")
            ],
        ]
    );
}

/// One pipelined statement bound with text parameters, then binary ones
/// with no declared types (read as the types the statement gives them),
/// then text that is not UTF-8: that Bind fails with 22021, as in
/// PostgreSQL, and the pipeline with it.
#[tokio::test]
async fn a_pipelined_statement_reads_each_bind_as_it_is_sent() {
    let server = common::Server::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE mixed (n integer, s text)")
        .await
        .unwrap();
    let mut raw = RawConnection::open(server.port).await;
    let binary_bind = |n: i32, s: &[u8]| {
        // Both parameters binary; results in text.
        let mut bind = vec![0u8, 0, 0, 1, 0, 1, 0, 2];
        for value in [&n.to_be_bytes()[..], s] {
            bind.extend_from_slice(&(value.len() as i32).to_be_bytes());
            bind.extend_from_slice(value);
        }
        bind.extend_from_slice(&[0, 0]);
        bind
    };
    raw.parse("INSERT INTO mixed VALUES ($1, $2)").await;
    raw.bind_execute(&["1", "one"]).await;
    raw.send(b'B', &binary_bind(2, b"two")).await;
    raw.send(b'E', &[0, 0, 0, 0, 0]).await;
    raw.bind_execute(&["3", "three"]).await;
    raw.send(b'S', &[]).await;
    assert_eq!(
        raw.answers_until_ready().await,
        ('I', b"12C2C2CZ".to_vec(), vec![])
    );
    assert_eq!(
        text_rows(&client, "SELECT n, s FROM mixed ORDER BY n").await,
        [(1, "one"), (2, "two"), (3, "three")]
            .map(|(n, s)| vec![Some(n.to_string()), Some(s.to_owned())])
            .to_vec()
    );

    let mut bad = vec![0u8, 0, 0, 0, 0, 2];
    for value in [&b"4"[..], b"f\xffr"] {
        bad.extend_from_slice(&(value.len() as i32).to_be_bytes());
        bad.extend_from_slice(value);
    }
    bad.extend_from_slice(&[0, 0]);
    raw.send(b'B', &binary_bind(5, b"five")).await;
    raw.send(b'E', &[0, 0, 0, 0, 0]).await;
    raw.send(b'B', &bad).await;
    raw.send(b'E', &[0, 0, 0, 0, 0]).await;
    raw.send(b'S', &[]).await;
    assert_eq!(
        raw.answers_until_ready().await,
        ('I', b"2CEZ".to_vec(), vec!["22021".to_owned()])
    );
    let count: i64 = client
        .query_one("SELECT count(*) FROM mixed", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 3);
}

/// An error in a Bind, which never reaches the session, still discards
/// the pipeline's staged rows at Sync; so does a Bind with parameters for
/// an empty statement (08P01).
#[tokio::test]
async fn a_failed_bind_discards_the_pipeline() {
    let server = common::Server::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE bound (n integer)")
        .await
        .unwrap();
    let mut raw = RawConnection::open(server.port).await;
    raw.parse("INSERT INTO bound VALUES ($1)").await;
    raw.bind_execute(&["5"]).await;
    // Bind of a statement that was never parsed.
    raw.send(b'B', b"\0nosuch\0\0\0\0\0\0\0").await;
    raw.send(b'S', &[]).await;
    assert_eq!(
        raw.answers_until_ready().await,
        ('I', b"12CEZ".to_vec(), vec!["26000".to_owned()])
    );
    let count = client
        .query_one("SELECT count(*) FROM bound", &[])
        .await
        .unwrap();
    assert_eq!(count.get::<_, i64>(0), 0);

    // Parameters for an empty statement.
    raw.send(b'P', b"empty\0\0\0\0").await;
    raw.bind_execute(&["5"]).await;
    let mut bind = b"\0empty\0\0\0\0\x01\0\0\0\x011".to_vec();
    bind.extend_from_slice(&[0, 0]);
    raw.send(b'B', &bind).await;
    raw.send(b'S', &[]).await;
    assert_eq!(
        raw.answers_until_ready().await,
        ('I', b"12CEZ".to_vec(), vec!["08P01".to_owned()])
    );
    let count = client
        .query_one("SELECT count(*) FROM bound", &[])
        .await
        .unwrap();
    assert_eq!(count.get::<_, i64>(0), 0);
}

#[tokio::test]
async fn ready_for_query_reports_the_transaction_status() {
    let server = common::Server::start();
    let mut raw = RawConnection::open(server.port).await;
    let ok = Vec::<String>::new();
    assert_eq!(
        raw.query("CREATE TABLE t (i integer)").await,
        ('I', ok.clone())
    );
    assert_eq!(raw.query("BEGIN").await, ('T', ok.clone()));
    assert_eq!(
        raw.query("INSERT INTO t VALUES (1)").await,
        ('T', ok.clone())
    );
    assert_eq!(raw.query("SAVEPOINT s").await, ('T', ok.clone()));
    assert_eq!(
        raw.query("SELECT * FROM nope").await,
        ('E', vec!["42P01".to_owned()])
    );
    assert_eq!(raw.query("SELECT 1").await, ('E', vec!["25P02".to_owned()]));
    // ROLLBACK TO SAVEPOINT revives the block; pgwire alone cannot know that.
    assert_eq!(
        raw.query("ROLLBACK TO SAVEPOINT s").await,
        ('T', ok.clone())
    );
    // An error while rows are being sent fails the block too.
    assert_eq!(
        raw.query("SELECT 1 / (i - 1) FROM t").await,
        ('E', vec!["22012".to_owned()])
    );
    assert_eq!(raw.query("COMMIT").await, ('I', ok.clone()));
    assert_eq!(raw.query("SELECT count(*) FROM t").await, ('I', ok.clone()));
    // The extended protocol reports the same at Sync.
    assert_eq!(raw.extended("BEGIN").await, ('T', ok.clone()));
    assert_eq!(
        raw.extended("INSERT INTO t VALUES (2)").await,
        ('T', ok.clone())
    );
    assert_eq!(
        raw.extended("INSERT INTO t VALUES ('x')").await,
        ('E', vec!["22P02".to_owned()])
    );
    assert_eq!(raw.extended("ROLLBACK").await, ('I', ok.clone()));
    // Errors outside a block leave the session idle.
    assert_eq!(
        raw.query("SELECT * FROM nope").await,
        ('I', vec!["42P01".to_owned()])
    );
    assert_eq!(raw.query("").await, ('I', ok.clone()));
    let client = server.connect().await;
    let count: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0);
}

#[tokio::test]
async fn copy_inside_a_block_commits_with_it() {
    let server = common::Server::start();
    let client = server.connect().await;
    setup(&client).await;
    client.batch_execute("BEGIN").await.unwrap();
    let sink = client
        .copy_in("COPY readings (time, device, value) FROM STDIN")
        .await
        .unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(
        b"2024-01-01 00:00:00+00\ta\t1.5\n2024-01-02 00:00:00+00\tb\t2.5\n",
    ))
    .await
    .unwrap();
    assert_eq!(sink.finish().await.unwrap(), 2);
    let other = server.connect().await;
    let seen = |rows: Vec<tokio_postgres::Row>| rows[0].get::<_, i64>(0);
    assert_eq!(
        seen(
            client
                .query("SELECT count(*) FROM readings", &[])
                .await
                .unwrap()
        ),
        2
    );
    assert_eq!(
        seen(
            other
                .query("SELECT count(*) FROM readings", &[])
                .await
                .unwrap()
        ),
        0
    );
    client.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        seen(
            other
                .query("SELECT count(*) FROM readings", &[])
                .await
                .unwrap()
        ),
        2
    );
}

#[tokio::test]
async fn sequences_never_repeat_a_value_across_kill_9() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let value = |rows: Vec<tokio_postgres::Row>| rows[0].get::<_, i64>(0);
    let handed_out = {
        let server = common::Server::start_in(&data_dir);
        let client = server.connect().await;
        client
            .batch_execute("CREATE SEQUENCE s; CREATE SEQUENCE reset")
            .await
            .unwrap();
        let mut last = 0;
        for _ in 0..40 {
            last = value(client.query("SELECT nextval('s')", &[]).await.unwrap());
        }
        client
            .batch_execute("SELECT setval('reset', 1000)")
            .await
            .unwrap();
        last
        // Dropped here: SIGKILL.
    };
    let server = common::Server::start_in(&data_dir);
    let client = server.connect().await;
    let next = value(client.query("SELECT nextval('s')", &[]).await.unwrap());
    assert!(next > handed_out, "{next} was handed out before the crash");
    let next = value(client.query("SELECT nextval('reset')", &[]).await.unwrap());
    assert_eq!(next, 1001, "setval is durable once it returns");
}

/// Sessions increment shared counters (alone and two at a time in
/// transaction blocks) and delete shared rows, all at once. No increment may
/// be lost and no row deleted twice: the final table equals a serial replay
/// of the statements that committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_and_deletes_match_a_serial_replay() {
    const SESSIONS: usize = 8;
    const ROUNDS: usize = 40;
    const KEYS: i32 = 5;
    let server = common::Server::start();
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE counters (k integer NOT NULL, n bigint NOT NULL);
             INSERT INTO counters SELECT k, 0 FROM generate_series(1, 5) AS k;
             CREATE TABLE events (time timestamptz NOT NULL, id integer NOT NULL);
             SELECT create_hypertable('events', 'time', chunk_time_interval => interval '1 hour');
             INSERT INTO events SELECT timestamptz '2024-01-01' + i * interval '10 minutes', i FROM generate_series(1, 200) AS i;",
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for session in 0..SESSIONS {
        let client = server.connect().await;
        tasks.push(tokio::spawn(async move {
            let mut increments = vec![0i64; KEYS as usize + 1];
            let mut deleted = Vec::new();
            let mut state = session as u64 * 7919 + 1;
            let mut next = move |n: u64| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 33) % n
            };
            for _ in 0..ROUNDS {
                let k = 1 + next(KEYS as u64) as i32;
                match next(3) {
                    0 => {
                        let n = client
                            .execute("UPDATE counters SET n = n + 1 WHERE k = $1", &[&k])
                            .await
                            .unwrap();
                        assert_eq!(n, 1);
                        increments[k as usize] += 1;
                    }
                    1 => {
                        let other = 1 + next(KEYS as u64) as i32;
                        let block = format!(
                            "BEGIN; UPDATE counters SET n = n + 1 WHERE k = {k}; \
                             UPDATE counters SET n = n + 10 WHERE k = {other}; COMMIT"
                        );
                        match client.batch_execute(&block).await {
                            Ok(()) => {
                                increments[k as usize] += 1;
                                increments[other as usize] += 10;
                            }
                            Err(error) => {
                                // First committer wins; the loser changed nothing.
                                assert_eq!(
                                    error.code(),
                                    Some(
                                        &tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
                                    ),
                                    "{error}"
                                );
                                client.batch_execute("ROLLBACK").await.unwrap();
                            }
                        }
                    }
                    _ => {
                        let low = 1 + next(190) as i32;
                        let rows = client
                            .query(
                                "DELETE FROM events WHERE id BETWEEN $1 AND $2 RETURNING id",
                                &[&low, &(low + 10)],
                            )
                            .await
                            .unwrap();
                        deleted.extend(rows.iter().map(|r| r.get::<_, i32>(0)));
                    }
                }
            }
            (increments, deleted)
        }));
    }
    let mut expected = vec![0i64; KEYS as usize + 1];
    let mut deleted = Vec::new();
    for task in tasks {
        let (increments, ids) = task.await.unwrap();
        for (total, add) in expected.iter_mut().zip(increments) {
            *total += add;
        }
        deleted.extend(ids);
    }
    let rows = client
        .query("SELECT k, n FROM counters ORDER BY k", &[])
        .await
        .unwrap();
    let actual: Vec<(i32, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let wanted: Vec<(i32, i64)> = (1..=KEYS).map(|k| (k, expected[k as usize])).collect();
    assert_eq!(actual, wanted);
    // Every row was deleted by exactly one session; the rest are still there.
    deleted.sort();
    let distinct = deleted.len();
    deleted.dedup();
    assert_eq!(distinct, deleted.len(), "a row was deleted twice");
    let remaining: Vec<i32> = client
        .query("SELECT id FROM events ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let replay: Vec<i32> = (1..=200)
        .filter(|i| deleted.binary_search(i).is_err())
        .collect();
    assert_eq!(remaining, replay);
}

/// Sessions upsert, insert and delete on a few shared keys at once; every
/// amount a statement reports adding is either still in the table or was
/// returned by exactly one DELETE: no upsert is lost or applied twice, and
/// a plain INSERT of a taken key fails with 23505 and adds nothing.
#[tokio::test]
async fn concurrent_upserts_and_deletes_lose_nothing() {
    const SESSIONS: usize = 8;
    const ROUNDS: usize = 50;
    const KEYS: i32 = 4;
    let server = common::Server::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE tally (k integer PRIMARY KEY, n bigint NOT NULL)")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for session in 0..SESSIONS {
        let client = server.connect().await;
        tasks.push(tokio::spawn(async move {
            let mut added = vec![0i64; KEYS as usize + 1];
            let mut removed = vec![0i64; KEYS as usize + 1];
            let mut state = session as u64 * 104729 + 3;
            let mut next = move |n: u64| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 33) % n
            };
            for _ in 0..ROUNDS {
                let k = 1 + next(KEYS as u64) as i32;
                match next(4) {
                    0 | 1 => {
                        let n = client
                            .execute(
                                "INSERT INTO tally VALUES ($1, 1) ON CONFLICT (k) DO UPDATE SET n = tally.n + 1",
                                &[&k],
                            )
                            .await
                            .unwrap();
                        assert_eq!(n, 1);
                        added[k as usize] += 1;
                    }
                    2 => {
                        let n = client
                            .execute("INSERT INTO tally VALUES ($1, 1000) ON CONFLICT DO NOTHING", &[&k])
                            .await
                            .unwrap();
                        added[k as usize] += 1000 * n as i64;
                    }
                    _ => {
                        let rows = client
                            .query("DELETE FROM tally WHERE k = $1 RETURNING n", &[&k])
                            .await
                            .unwrap();
                        removed[k as usize] += rows.iter().map(|r| r.get::<_, i64>(0)).sum::<i64>();
                        match client.execute("INSERT INTO tally VALUES ($1, 7)", &[&k]).await {
                            Ok(n) => added[k as usize] += 7 * n as i64,
                            Err(error) => assert_eq!(
                                error.code(),
                                Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION),
                                "{error}"
                            ),
                        }
                    }
                }
            }
            (added, removed)
        }));
    }
    let mut net = vec![0i64; KEYS as usize + 1];
    for task in tasks {
        let (added, removed) = task.await.unwrap();
        for k in 0..net.len() {
            net[k] += added[k] - removed[k];
        }
    }
    let rows = client
        .query("SELECT k, n FROM tally ORDER BY k", &[])
        .await
        .unwrap();
    let mut actual = vec![0i64; KEYS as usize + 1];
    for row in &rows {
        actual[row.get::<_, i32>(0) as usize] = row.get(1);
    }
    assert_eq!(actual, net);
}

/// A plain INSERT of the extended protocol is staged at Execute and
/// committed at Sync: sessions racing to insert one key must see exactly
/// one success and the others a 23505, whether the key was committed when
/// their INSERT ran or only when they commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_inserts_of_one_key_succeed_once() {
    const SESSIONS: usize = 6;
    const KEYS: i32 = 40;
    let server = common::Server::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE claims (k integer PRIMARY KEY, session integer NOT NULL)")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for session in 0..SESSIONS as i32 {
        let client = server.connect().await;
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            for k in 0..KEYS {
                match client
                    .execute("INSERT INTO claims VALUES ($1, $2)", &[&k, &session])
                    .await
                {
                    Ok(n) => {
                        assert_eq!(n, 1);
                        won.push(k);
                    }
                    Err(error) => assert_eq!(
                        error.code(),
                        Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION),
                        "{error}"
                    ),
                }
            }
            (session, won)
        }));
    }
    let mut winners = std::collections::BTreeMap::new();
    for task in tasks {
        let (session, won) = task.await.unwrap();
        for k in won {
            assert!(
                winners.insert(k, session).is_none(),
                "two sessions were told they inserted key {k}"
            );
        }
    }
    let rows = client
        .query("SELECT k, session FROM claims ORDER BY k", &[])
        .await
        .unwrap();
    let stored: std::collections::BTreeMap<i32, i32> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(stored, winners);
    assert_eq!(stored.len(), KEYS as usize);
}

/// UPDATE and DELETE naming one row by its key find it through the key
/// index and read it from wherever it is (segments after checkpoints, or
/// memtables), before and after a restart rebuilds the index.
#[tokio::test]
async fn point_changes_by_key_find_rows_in_segments_and_memtables() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let mut expected: std::collections::BTreeMap<i64, i64> = (0..50_000).map(|i| (i, i)).collect();
    for round in 0..2 {
        let server = common::Server::start_with(&data, &["--flush-threshold-mib", "1"]);
        let client = server.connect().await;
        if round == 0 {
            client
                .batch_execute(
                    "CREATE TABLE k (time timestamptz NOT NULL, id bigint PRIMARY KEY, v bigint, note text);
                     SELECT create_hypertable('k', 'time', chunk_time_interval => interval '1 hour');
                     INSERT INTO k SELECT timestamptz '2024-01-10' + i * interval '1 second', i, i, md5(i::text) FROM generate_series(0, 49999) AS i;",
                )
                .await
                .unwrap();
        }
        for i in 0..60i64 {
            let id = (i * 7919 + round * 13) % 50_000;
            if i % 3 == 2 {
                let n = client
                    .execute("DELETE FROM k WHERE id = $1", &[&id])
                    .await
                    .unwrap();
                assert_eq!(n, u64::from(expected.remove(&id).is_some()), "delete {id}");
            } else if i % 3 == 1 {
                // The SET reads a parameter: a kept plan must not keep its value.
                let n = client
                    .execute("UPDATE k SET v = v + $2 WHERE id = $1", &[&id, &i])
                    .await
                    .unwrap();
                let found = expected.get_mut(&id).map(|v| *v += i).is_some();
                assert_eq!(n, u64::from(found), "update {id} by {i}");
            } else {
                let n = client
                    .execute("UPDATE k SET v = v + 1000000 WHERE id = $1", &[&id])
                    .await
                    .unwrap();
                let found = expected.get_mut(&id).map(|v| *v += 1_000_000).is_some();
                assert_eq!(n, u64::from(found), "update {id}");
            }
        }
        // RETURNING reads the whole row, a plain DELETE only its key and
        // time: the kept plans of the two must not mix up their columns.
        for id in [round * 1000 + 5, round * 1000 + 6] {
            let returned = client
                .query("DELETE FROM k WHERE id = $1 RETURNING v, note", &[&id])
                .await
                .unwrap();
            let row = returned.first().expect("a row deleted");
            assert_eq!(row.get::<_, i64>(0), expected.remove(&id).unwrap());
            let note: String = client
                .query_one("SELECT md5($1::text)", &[&id.to_string()])
                .await
                .unwrap()
                .get(0);
            assert_eq!(row.get::<_, String>(1), note);
        }
        let rows = client
            .query("SELECT id, v FROM k ORDER BY id", &[])
            .await
            .unwrap();
        let actual: Vec<(i64, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let wanted: Vec<(i64, i64)> = expected.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(actual, wanted, "round {round}");
    }
}

/// UPDATE and DELETE over a table large enough to be scanned in several
/// partitions, with rows both in segment files and in memtables: every row
/// stays visible exactly once (a scan once lost whole partitions of
/// memtable rows when an optimizer split the segment scan).
#[tokio::test]
async fn updates_keep_every_row_of_a_partitioned_scan() {
    let temp = tempfile::tempdir().unwrap();
    let server =
        common::Server::start_with(&temp.path().join("data"), &["--flush-threshold-mib", "1"]);
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE t (time timestamptz NOT NULL, d integer NOT NULL, v bigint, note text);
             SELECT create_hypertable('t', 'time', chunk_time_interval => interval '1 day');
             INSERT INTO t SELECT timestamptz '2024-01-10' + i * interval '500 milliseconds', i % 100, i, md5(i::text) FROM generate_series(0, 99999) AS i;",
        )
        .await
        .unwrap();
    for i in 0..40i64 {
        let key = i * 2477 % 100_000;
        let changed = client
            .execute(
                &format!("UPDATE t SET v = v + 1000000 WHERE time = timestamptz '2024-01-10' + interval '{key} milliseconds' * 500"),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(changed, 1);
        let count: i64 = client
            .query_one("SELECT count(*) FROM t", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(count, 100_000, "after update {i}");
    }
    let deleted = client
        .execute("DELETE FROM t WHERE d = 7", &[])
        .await
        .unwrap();
    assert_eq!(deleted, 1000);
    let row: (i64, i64) = client
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE v >= 1000000) FROM t",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    let updated_with_d7 = (0..40i64).filter(|i| i * 2477 % 100_000 % 100 == 7).count() as i64;
    assert_eq!(row, (99_000, 40 - updated_with_d7));
}

/// A block's DDL holds its tables: another session's statement naming one
/// waits for the block's COMMIT and then sees the block's rows; a closed
/// connection releases them, with its DDL undone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_changed_by_a_block_wait_for_it() {
    let server = common::Server::start();
    let migrator = server.connect().await;
    let reader = server.connect().await;
    migrator
        .batch_execute(
            "BEGIN; CREATE TABLE migrated (a integer); INSERT INTO migrated VALUES (1), (2)",
        )
        .await
        .unwrap();
    let count = tokio::spawn(async move {
        let rows = reader
            .query("SELECT count(*) FROM migrated", &[])
            .await
            .map(|rows| rows[0].get::<_, i64>(0));
        (reader, rows)
    });
    // While the block is open the reader waits (it would count 0 rows if it
    // did not: the table exists, its rows are not committed).
    let waited = tokio::time::timeout(std::time::Duration::from_millis(300), async {
        while !count.is_finished() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(waited.is_err(), "the reader did not wait for the block");
    migrator.batch_execute("COMMIT").await.unwrap();
    let (reader, counted) = count.await.unwrap();
    assert_eq!(counted.unwrap(), 2);

    // A connection closed inside a block rolls it back.
    let doomed = server.connect().await;
    doomed
        .batch_execute("BEGIN; CREATE TABLE never_committed (a integer)")
        .await
        .unwrap();
    drop(doomed);
    let error = reader
        .query("SELECT * FROM never_committed", &[])
        .await
        .unwrap_err();
    assert_eq!(
        error.code(),
        Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
    );
}

/// DDL of a block cut off by kill -9 is gone after the restart; a committed
/// block's DDL and rows are there.
#[tokio::test]
async fn ddl_of_an_uncommitted_block_is_undone_after_kill_9() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    {
        let server = common::Server::start_in(&data_dir);
        let client = server.connect().await;
        client
            .batch_execute(
                "CREATE TABLE existing (a integer);
                 BEGIN;
                 CREATE TABLE committed (time timestamptz NOT NULL, v integer);
                 SELECT create_hypertable('committed', 'time');
                 INSERT INTO committed VALUES ('2024-01-01 00:00+00', 1);
                 COMMIT;",
            )
            .await
            .unwrap();
        client
            .batch_execute(
                "BEGIN;
                 CREATE TABLE doomed (time timestamptz NOT NULL, v integer);
                 SELECT create_hypertable('doomed', 'time');
                 CREATE INDEX doomed_v ON doomed (v);
                 ALTER TABLE existing ADD COLUMN b text;
                 CREATE SEQUENCE doomed_seq;
                 INSERT INTO doomed VALUES ('2024-01-01 00:00+00', 1);",
            )
            .await
            .unwrap();
        // Dropped here with the block open: SIGKILL.
    }
    let server = common::Server::start_in(&data_dir);
    let client = server.connect().await;
    let code = |sql: &'static str| {
        let client = &client;
        async move { client.query(sql, &[]).await.unwrap_err().code().cloned() }
    };
    use tokio_postgres::error::SqlState;
    assert_eq!(
        code("SELECT * FROM doomed").await,
        Some(SqlState::UNDEFINED_TABLE)
    );
    assert_eq!(
        code("SELECT b FROM existing").await,
        Some(SqlState::UNDEFINED_COLUMN)
    );
    assert_eq!(
        code("SELECT nextval('doomed_seq')").await,
        Some(SqlState::UNDEFINED_TABLE)
    );
    let rows = client
        .query(
            "SELECT v FROM committed UNION ALL SELECT num_chunks::integer FROM timescaledb_information.hypertables",
            &[],
        )
        .await
        .unwrap();
    let values: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(values, vec![1, 1]);
    // The names are free again.
    client
        .batch_execute("CREATE TABLE doomed (a integer); ALTER TABLE existing ADD COLUMN b text")
        .await
        .unwrap();
}

/// COPY FROM STDIN in the binary format (what asyncpg's
/// `copy_records_to_table` sends): values arrive as PostgreSQL's binary
/// forms; a damaged stream fails the COPY and stores nothing.
#[tokio::test]
async fn binary_copy_in_stores_rows_and_refuses_damaged_data() {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    let server = common::Server::start();
    let client = server.connect().await;
    setup(&client).await;
    let sink = client
        .copy_in("COPY readings (time, device, value, n) FROM STDIN (FORMAT binary)")
        .await
        .unwrap();
    let writer = BinaryCopyInWriter::new(
        sink,
        &[Type::TIMESTAMPTZ, Type::TEXT, Type::FLOAT8, Type::INT4],
    );
    futures::pin_mut!(writer);
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_704_067_200);
    for n in 0..500i32 {
        let device = format!("d{}", n % 3);
        let value = (n % 2 == 0).then_some(n as f64 / 4.0);
        writer
            .as_mut()
            .write(&[&time, &device, &value, &n])
            .await
            .unwrap();
    }
    assert_eq!(writer.finish().await.unwrap(), 500);
    let row = client
        .query_one(
            "SELECT count(*), count(value), sum(n)::bigint, min(device) FROM readings",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 500);
    assert_eq!(row.get::<_, i64>(1), 250);
    assert_eq!(row.get::<_, i64>(2), 124_750);
    assert_eq!(row.get::<_, String>(3), "d0");

    // A wrong signature, a tuple with the wrong field count, and a tuple cut
    // off by the end of the data each fail with 22P04.
    let mut tuple = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec();
    tuple.extend_from_slice(&1i16.to_be_bytes());
    tuple.extend_from_slice(&(-1i32).to_be_bytes());
    let mut cut = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec();
    cut.extend_from_slice(&4i16.to_be_bytes());
    cut.extend_from_slice(&8i32.to_be_bytes());
    cut.extend_from_slice(&[0, 0, 0]);
    for bad in [b"NOTCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec(), tuple, cut] {
        let sink = client
            .copy_in("COPY readings (time, device, value, n) FROM STDIN (FORMAT binary)")
            .await
            .unwrap();
        futures::pin_mut!(sink);
        sink.send(bytes::Bytes::from(bad)).await.unwrap();
        let error = sink.finish().await.unwrap_err();
        assert_eq!(
            error.as_db_error().unwrap().code().code(),
            "22P04",
            "{error}"
        );
    }
    let count: i64 = client
        .query_one("SELECT count(*) FROM readings", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 500);
}

/// A statement too slow for `statement_timeout`, or canceled by the client
/// (CancelRequest) or another session (`pg_cancel_backend`), ends with
/// 57014 and the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_statements_are_canceled() {
    use tokio_postgres::error::SqlState;
    let slow = "SELECT count(*) FROM generate_series(1, 100000000000) AS g(i) WHERE i % 7 = 3";
    let server = common::Server::start();
    let client = server.connect().await;

    client
        .batch_execute("SET statement_timeout = '300ms'")
        .await
        .unwrap();
    let error = client.query(slow, &[]).await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::QUERY_CANCELED), "{error}");
    let message = |e: &tokio_postgres::Error| e.as_db_error().map(|d| d.message().to_owned());
    assert_eq!(
        message(&error).as_deref(),
        Some("canceling statement due to statement timeout")
    );
    client
        .batch_execute("RESET statement_timeout")
        .await
        .unwrap();
    let one: i32 = client
        .query_one("SELECT 1::integer", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(one, 1);

    let victim = server.connect().await;
    let pid: i32 = victim
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let victim_token = victim.cancel_token();
    let running = tokio::spawn(async move { victim.query(slow, &[]).await.map(|_| ()) });
    // First by CancelRequest, then (a new query) by pg_cancel_backend.
    let error = loop {
        if running.is_finished() {
            break running.await.unwrap().unwrap_err();
        }
        let _ = victim_token.cancel_query(tokio_postgres::NoTls).await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(error.code(), Some(&SqlState::QUERY_CANCELED), "{error}");
    assert_eq!(
        message(&error).as_deref(),
        Some("canceling statement due to user request")
    );

    let victim = server.connect().await;
    let pid_again: i32 = victim
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    assert_ne!(pid, pid_again);
    let running = tokio::spawn(async move { victim.query(slow, &[]).await.map(|_| ()) });
    let error = loop {
        if running.is_finished() {
            break running.await.unwrap().unwrap_err();
        }
        client
            .query_one("SELECT pg_cancel_backend($1)", &[&pid_again])
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(error.code(), Some(&SqlState::QUERY_CANCELED), "{error}");
    let unknown: bool = client
        .query_one("SELECT pg_cancel_backend(-5)", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!unknown, "no session has that pid");
}

/// An Execute without a row limit sends its rows as they are made: the
/// first row of an endless result arrives, a cancel then stops it, and
/// rows made before an error reach the client ahead of the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_results_stream_to_the_client() {
    use futures::StreamExt;
    use tokio_postgres::error::SqlState;
    let server = common::Server::start();
    let client = server.connect().await;
    let endless = "SELECT i FROM generate_series(1, 100000000000) AS g(i)";
    let rows = client.query_raw(endless, Vec::<i64>::new()).await.unwrap();
    let mut rows = std::pin::pin!(rows);
    let first = tokio::time::timeout(std::time::Duration::from_secs(20), rows.next())
        .await
        .expect("the first row comes before the result ends")
        .unwrap()
        .unwrap();
    assert_eq!(first.get::<_, i64>(0), 1);
    client
        .cancel_token()
        .cancel_query(tokio_postgres::NoTls)
        .await
        .unwrap();
    let mut received = 1u64;
    let error = loop {
        match rows.next().await {
            Some(Ok(_)) => received += 1,
            Some(Err(error)) => break error,
            None => panic!("the endless result ended after {received} rows"),
        }
    };
    assert_eq!(error.code(), Some(&SqlState::QUERY_CANCELED), "{error}");

    let failing = "SELECT 100 / (i - 90000) AS q FROM generate_series(1, 100000) AS g(i)";
    let rows = client.query_raw(failing, Vec::<i64>::new()).await.unwrap();
    let mut rows = std::pin::pin!(rows);
    let mut before_error = Vec::new();
    let error = loop {
        match rows.next().await {
            Some(Ok(row)) => before_error.push(row.get::<_, i64>(0)),
            Some(Err(error)) => break error,
            None => panic!("the division by zero did not fail"),
        }
    };
    assert_eq!(error.code(), Some(&SqlState::DIVISION_BY_ZERO), "{error}");
    // generate_series runs in two partitions, so rows past the failing one
    // may come first; never all of them.
    assert!(
        !before_error.is_empty() && before_error.len() < 100_000,
        "{} rows before the error",
        before_error.len()
    );
    let one: i32 = client
        .query_one("SELECT 1::integer", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(one, 1);
}

/// A portal read in batches of rows (Execute with a row limit, then
/// PortalSuspended), as drivers fetch large results.
#[tokio::test]
async fn portals_return_rows_in_batches() {
    let server = common::Server::start();
    let mut client = server.connect().await;
    let transaction = client.transaction().await.unwrap();
    let statement = transaction
        .prepare("SELECT g FROM generate_series(1, 25) AS s(g) WHERE g > $1 ORDER BY g")
        .await
        .unwrap();
    let portal = transaction.bind(&statement, &[&5i64]).await.unwrap();
    let mut batches = Vec::new();
    loop {
        let rows = transaction.query_portal(&portal, 7).await.unwrap();
        if rows.is_empty() {
            break;
        }
        batches.push(rows.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>());
    }
    transaction.commit().await.unwrap();
    assert_eq!(
        batches.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![7, 7, 6]
    );
    assert_eq!(batches.concat(), (6..=25).collect::<Vec<i64>>());
}

async fn try_connect(
    server: &common::Server,
    user: &str,
    password: Option<&str>,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut config = format!(
        "host=127.0.0.1 port={} user={user} dbname=postgres",
        server.port
    );
    if let Some(password) = password {
        config.push_str(&format!(" password={password}"));
    }
    let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

fn code_of(result: Result<tokio_postgres::Client, tokio_postgres::Error>) -> Option<String> {
    result
        .err()
        .and_then(|e| e.as_db_error().map(|d| d.code().code().to_owned()))
}

/// With TEMPORA_PASSWORD set, every connection authenticates with
/// SCRAM-SHA-256: the right password gets in, a wrong one gets 28P01;
/// roles made with CREATE ROLE / CREATE USER log in with theirs, and
/// ALTER ROLE changes it.
#[tokio::test]
async fn scram_authentication_checks_passwords() {
    let temp = tempfile::tempdir().unwrap();
    let server = common::Server::start_with_env(
        &temp.path().join("data"),
        &[],
        &[("TEMPORA_PASSWORD", "s3cret")],
    );
    let admin = try_connect(&server, "postgres", Some("s3cret"))
        .await
        .unwrap();
    assert_eq!(
        code_of(try_connect(&server, "postgres", Some("wrong")).await).as_deref(),
        Some("28P01")
    );
    assert!(
        try_connect(&server, "postgres", None).await.is_err(),
        "no password"
    );
    assert_eq!(
        code_of(try_connect(&server, "nobody", Some("s3cret")).await).as_deref(),
        Some("28P01")
    );
    admin
        .batch_execute("CREATE USER alice WITH PASSWORD 'wonder'; CREATE ROLE readers PASSWORD 'x'")
        .await
        .unwrap();
    let alice = try_connect(&server, "alice", Some("wonder")).await.unwrap();
    let user: String = alice
        .query_one("SELECT current_user", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(user, "alice");
    assert_eq!(
        code_of(try_connect(&server, "readers", Some("x")).await).as_deref(),
        Some("28000"),
        "a role without LOGIN"
    );
    admin
        .batch_execute("ALTER ROLE alice WITH PASSWORD 'looking-glass'")
        .await
        .unwrap();
    assert_eq!(
        code_of(try_connect(&server, "alice", Some("wonder")).await).as_deref(),
        Some("28P01")
    );
    try_connect(&server, "alice", Some("looking-glass"))
        .await
        .unwrap();
    // Passwords are stored as SCRAM verifiers, never as given.
    let listed: Vec<String> = admin
        .query("SELECT rolname FROM pg_roles ORDER BY rolname", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(listed, vec!["alice", "postgres", "readers"]);
    admin.batch_execute("DROP ROLE readers").await.unwrap();
    let error = admin.batch_execute("DROP ROLE readers").await.unwrap_err();
    assert_eq!(error.code().map(|c| c.code()), Some("42704"));
    drop(server);

    // The password file does what TEMPORA_PASSWORD does, and the
    // passwords of the roles made before stay.
    let file = temp.path().join("password");
    std::fs::write(&file, "from-a-file\n").unwrap();
    let server = common::Server::start_with(
        &temp.path().join("data"),
        &["--password-file", file.to_str().unwrap()],
    );
    try_connect(&server, "postgres", Some("from-a-file"))
        .await
        .unwrap();
    try_connect(&server, "alice", Some("looking-glass"))
        .await
        .unwrap();
}

/// The embedded default trusts loopback clients that name a role that may
/// log in, and refuses to listen beyond loopback without authentication.
#[tokio::test]
async fn trust_mode_stays_on_loopback() {
    let server = common::Server::start();
    let admin = server.connect().await;
    admin.batch_execute("CREATE ROLE bob LOGIN").await.unwrap();
    try_connect(&server, "bob", None).await.unwrap();
    assert_eq!(
        code_of(try_connect(&server, "carol", None).await).as_deref(),
        Some("28000")
    );
    let temp = tempfile::tempdir().unwrap();
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_tempora"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(temp.path().join("data"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("without authentication"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// `--tls-cert` / `--tls-key`: a client that requires SSL gets TLS (psql,
/// through libpq); without them such a client is refused.
#[tokio::test]
async fn tls_serves_clients_that_require_ssl() {
    let temp = tempfile::tempdir().unwrap();
    let (cert, key) = (
        temp.path().join("server.crt"),
        temp.path().join("server.key"),
    );
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let server = common::Server::start_with(
        &temp.path().join("data"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let psql = |port: u16, mode: &str| {
        std::process::Command::new("psql")
            .arg(format!(
                "host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode={mode}"
            ))
            .args(["-X", "-At", "-c", "SELECT 1"])
            .output()
            .unwrap()
    };
    let secure = psql(server.port, "require");
    assert!(
        secure.status.success(),
        "{}",
        String::from_utf8_lossy(&secure.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&secure.stdout).trim(), "1");
    let plain = common::Server::start();
    let refused = psql(plain.port, "require");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("SSL"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
