"""psycopg 3 against tempora: transactions as psycopg opens them (a block
before the first statement), server-side parameter binding, executemany,
COPY in text and binary, the types it decodes, errors as exception classes,
and the async API. Run by crates/server/tests/drivers.rs with TEMPORA_PORT
set; exits non-zero on the first failed check."""

import asyncio
import datetime
import decimal
import os
import uuid

import psycopg
from psycopg import errors
from psycopg.types.json import Jsonb

DSN = f"host=127.0.0.1 port={os.environ['TEMPORA_PORT']} user=postgres dbname=postgres"
UTC = datetime.timezone.utc


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def sync_api():
    with psycopg.connect(DSN) as conn:
        # psycopg opens a block before the first statement: DDL runs in it.
        conn.execute(
            """CREATE TABLE events (
                 time timestamptz NOT NULL, device text NOT NULL, value double precision,
                 amount numeric(12, 2), id uuid, payload jsonb, span interval, ok boolean,
                 raw bytea, PRIMARY KEY (device, time))"""
        )
        conn.execute("SELECT create_hypertable('events', 'time', chunk_time_interval => interval '1 day')")
        check(conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS, "DDL opened a block")
        conn.commit()

        start = datetime.datetime(2024, 1, 1, tzinfo=UTC)
        row_id = uuid.uuid4()
        with conn.cursor() as cur:
            # Server-side binding: the values travel as parameters.
            cur.execute(
                "INSERT INTO events VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (start, "a", 1.5, decimal.Decimal("12.34"), row_id, Jsonb({"k": [1, 2]}),
                 datetime.timedelta(days=1, seconds=5), True, b"\x00\x01"),
            )
            cur.executemany(
                "INSERT INTO events (time, device, value) VALUES (%s, %s, %s)",
                [(start + datetime.timedelta(minutes=i), "b", float(i)) for i in range(1, 101)],
            )
            check(cur.rowcount == 100, f"executemany rowcount {cur.rowcount}")
        conn.commit()

        row = conn.execute(
            "SELECT time, device, value, amount, id, payload, span, ok, raw FROM events WHERE device = %s",
            ("a",),
        ).fetchone()
        check(row[0] == start, f"timestamptz {row[0]!r}")
        check(row[2] == 1.5 and row[3] == decimal.Decimal("12.34"), f"numbers {row[2:4]!r}")
        check(row[4] == row_id, f"uuid {row[4]!r}")
        check(row[5] == {"k": [1, 2]}, f"jsonb {row[5]!r}")
        check(row[6] == datetime.timedelta(days=1, seconds=5), f"interval {row[6]!r}")
        check(row[7] is True and bytes(row[8]) == b"\x00\x01", f"bool/bytea {row[7:]!r}")

        # Binary results and prepared statements.
        with conn.cursor(binary=True) as cur:
            for _ in range(3):
                cur.execute("SELECT count(*), sum(value) FROM events WHERE device = %s", ("b",), prepare=True)
                check(cur.fetchone() == (100, 5050.0), "binary aggregate")

        # COPY in text and binary form, and out.
        with conn.cursor() as cur:
            with cur.copy("COPY events (time, device, value) FROM STDIN") as copy:
                for i in range(50):
                    copy.write_row((start + datetime.timedelta(hours=i), "c", i * 0.5))
            with cur.copy("COPY events (time, device, value) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["timestamptz", "text", "float8"])
                for i in range(50):
                    copy.write_row((start + datetime.timedelta(hours=i), "d", i * 0.25))
        conn.commit()
        counts = dict(conn.execute("SELECT device, count(*) FROM events GROUP BY device").fetchall())
        check(counts == {"a": 1, "b": 100, "c": 50, "d": 50}, f"counts {counts}")
        with conn.cursor() as cur:
            with cur.copy("COPY (SELECT device, value FROM events WHERE device = 'c' ORDER BY value LIMIT 2) TO STDOUT") as copy:
                rows = list(copy.rows())
        check(rows == [("c", "0"), ("c", "0.5")], f"copy out {rows}")

        # time_bucket through parameters, as an application queries.
        buckets = conn.execute(
            "SELECT time_bucket(%s::interval, time) AS b, count(*) FROM events WHERE device = 'c' "
            "AND time >= %s GROUP BY 1 ORDER BY 1 LIMIT 2",
            ("1 day", start),
        ).fetchall()
        check(buckets == [(start, 24), (start + datetime.timedelta(days=1), 24)], f"buckets {buckets}")

        # Errors are psycopg's exception classes; the block fails and rolls back.
        try:
            conn.execute("INSERT INTO events (time, device) VALUES (%s, 'a')", (start,))
            raise AssertionError("duplicate key accepted")
        except errors.UniqueViolation:
            pass
        check(conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR, "failed block")
        try:
            conn.execute("SELECT 1")
            raise AssertionError("a failed block ran a statement")
        except errors.InFailedSqlTransaction:
            pass
        conn.rollback()
        try:
            conn.execute("SELECT * FROM no_such_table")
        except errors.UndefinedTable:
            conn.rollback()

        # A rolled-back block takes its DDL and rows with it.
        conn.execute("CREATE TABLE scratch (a integer)")
        conn.execute("INSERT INTO scratch VALUES (1)")
        conn.rollback()
        try:
            conn.execute("SELECT * FROM scratch")
            raise AssertionError("rolled-back table exists")
        except errors.UndefinedTable:
            conn.rollback()

        # Autocommit, and the transaction() context manager with savepoints.
        conn.autocommit = True
        # SET of a reported setting arrives as ParameterStatus.
        conn.execute("SET application_name = 'ingest-worker'")
        check(conn.info.parameter_status("application_name") == "ingest-worker", "ParameterStatus")
        notices = []
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary))
        conn.execute("CREATE TABLE IF NOT EXISTS events (a integer)")
        check(notices == ['relation "events" already exists, skipping'], f"notices {notices}")
        with conn.transaction():
            conn.execute("INSERT INTO events (time, device) VALUES (%s, 'e')", (start,))
            try:
                with conn.transaction():
                    conn.execute("INSERT INTO events (time, device) VALUES (%s, 'e')", (start,))
            except errors.UniqueViolation:
                pass
        check(conn.execute("SELECT count(*) FROM events WHERE device = 'e'").fetchone()[0] == 1, "savepoint")


async def async_api():
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
        async with conn.cursor() as cur:
            await cur.execute("SELECT device, count(*) FROM events WHERE device IN (%s, %s) GROUP BY device ORDER BY device", ("a", "b"))
            rows = await cur.fetchall()
            check(rows == [("a", 1), ("b", 100)], f"async rows {rows}")
            await cur.executemany(
                "INSERT INTO events (time, device, value) VALUES (%s, %s, %s)",
                [(datetime.datetime(2024, 2, 1, tzinfo=UTC) + datetime.timedelta(seconds=i), "f", i) for i in range(20)],
            )
            await cur.execute("SELECT count(*) FROM events WHERE device = 'f'")
            check((await cur.fetchone())[0] == 20, "async executemany")


sync_api()
asyncio.run(async_api())
print("psycopg: ok")
