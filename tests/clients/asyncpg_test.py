"""asyncpg against tempora: prepared statements, executemany of 10k rows as
seed 002's ingestion does, copy_records_to_table (binary COPY), every type
it decodes in binary, transactions, and errors as asyncpg's exception
classes. Run by crates/server/tests/drivers.rs with TEMPORA_PORT set."""

import asyncio
import datetime
import decimal
import json
import os
import uuid

import asyncpg

DSN = f"postgresql://postgres@127.0.0.1:{os.environ['TEMPORA_PORT']}/postgres"
UTC = datetime.timezone.utc


def check(condition, message):
    if not condition:
        raise AssertionError(message)


async def main():
    conn = await asyncpg.connect(DSN)
    await conn.execute(
        """CREATE TABLE analytics_events (
             time timestamptz NOT NULL, user_id bigint NOT NULL, event text NOT NULL,
             properties jsonb, amount numeric(10, 2), session uuid)"""
    )
    await conn.execute("SELECT create_hypertable('analytics_events', 'time', chunk_time_interval => interval '1 day')")

    start = datetime.datetime(2024, 3, 1, tzinfo=UTC)
    session = uuid.uuid4()
    rows = [
        (start + datetime.timedelta(seconds=i), i % 97, "click" if i % 3 else "view",
         json.dumps({"page": f"/p/{i % 10}"}), decimal.Decimal(i % 100) / 4, session)
        for i in range(10_000)
    ]
    await conn.executemany(
        "INSERT INTO analytics_events (time, user_id, event, properties, amount, session) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        rows,
    )
    check(await conn.fetchval("SELECT count(*) FROM analytics_events") == 10_000, "executemany")

    # executemany is atomic: its rows are one pipeline, committed at Sync,
    # so a row that fails (NULL into NOT NULL) leaves none of them.
    failing = [(start, 1, "ok", None, None, None)] * 500 + [(start, 2, None, None, None, None)]
    try:
        await conn.executemany(
            "INSERT INTO analytics_events (time, user_id, event, properties, amount, session) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            failing,
        )
        raise AssertionError("a NULL event was accepted")
    except asyncpg.NotNullViolationError:
        pass
    check(await conn.fetchval("SELECT count(*) FROM analytics_events") == 10_000, "atomic executemany")

    # A prepared statement, run many times with different parameters.
    by_user = await conn.prepare(
        "SELECT count(*) AS n, count(DISTINCT event) AS kinds FROM analytics_events WHERE user_id = $1"
    )
    for user in (0, 1, 96):
        record = await by_user.fetchrow(user)
        check(record["n"] in (103, 104) and record["kinds"] == 2, f"user {user}: {record}")
    check([a.name for a in by_user.get_attributes()] == ["n", "kinds"], "prepared columns")

    # copy_records_to_table sends binary COPY.
    copied = await conn.copy_records_to_table(
        "analytics_events",
        records=[(start + datetime.timedelta(days=1, seconds=i), 1000 + i, "copy", None, None, None) for i in range(500)],
        columns=["time", "user_id", "event", "properties", "amount", "session"],
    )
    check(copied == "COPY 500", f"copy result {copied!r}")

    # The types asyncpg decodes in binary.
    record = await conn.fetchrow(
        """SELECT time, user_id, properties, amount, session,
                  interval '1 day 02:03:04.5' AS span, true AS flag, 1.5::float8 AS f8,
                  2.5::real AS f4, 7::smallint AS i2, 8::integer AS i4, '\\x0102'::bytea AS raw,
                  'text'::varchar AS v, '2024-03-01'::date AS d, '2024-03-01 10:00'::timestamp AS ts,
                  ARRAY[1, 2, 3] AS ints, ARRAY['a', 'b'] AS texts
           FROM analytics_events WHERE user_id = 5 ORDER BY time LIMIT 1"""
    )
    check(record["time"] == start + datetime.timedelta(seconds=5), f"timestamptz {record['time']!r}")
    check(json.loads(record["properties"]) == {"page": "/p/5"}, f"jsonb {record['properties']!r}")
    check(record["amount"] == decimal.Decimal("1.25"), f"numeric {record['amount']!r}")
    check(record["session"] == session, "uuid")
    check(record["span"] == datetime.timedelta(days=1, hours=2, minutes=3, seconds=4.5), f"interval {record['span']!r}")
    check(record["flag"] is True and record["f8"] == 1.5 and record["f4"] == 2.5, "bool and floats")
    check(record["i2"] == 7 and record["i4"] == 8 and record["raw"] == b"\x01\x02", "ints and bytea")
    check(record["v"] == "text" and record["d"] == datetime.date(2024, 3, 1), "varchar and date")
    check(record["ts"] == datetime.datetime(2024, 3, 1, 10, 0), "timestamp")
    check(list(record["ints"]) == [1, 2, 3] and list(record["texts"]) == ["a", "b"], f"arrays {record['ints']!r}")

    # Hourly aggregate with COUNT(DISTINCT), as seed 002's dashboards.
    hours = await conn.fetch(
        "SELECT time_bucket('1 hour', time) AS hour, count(DISTINCT user_id) AS users "
        "FROM analytics_events WHERE time < $1 GROUP BY 1 ORDER BY 1",
        start + datetime.timedelta(hours=2),
    )
    check([r["users"] for r in hours] == [97, 97], f"hourly users {hours}")

    # Transactions: rolled back rows are gone, committed ones stay.
    try:
        async with conn.transaction():
            await conn.execute("INSERT INTO analytics_events (time, user_id, event) VALUES ($1, -1, 'tx')", start)
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    async with conn.transaction():
        await conn.execute("INSERT INTO analytics_events (time, user_id, event) VALUES ($1, -2, 'tx')", start)
    check(await conn.fetchval("SELECT count(*) FROM analytics_events WHERE event = 'tx'") == 1, "transactions")

    # Errors arrive as asyncpg's classes, and the connection goes on.
    try:
        await conn.fetch("SELECT * FROM no_such_table")
        raise AssertionError("no error")
    except asyncpg.UndefinedTableError:
        pass
    try:
        await conn.execute("INSERT INTO analytics_events (time, user_id, event) VALUES (NULL, 1, 'x')")
        raise AssertionError("no error")
    except asyncpg.NotNullViolationError:
        pass
    check(await conn.fetchval("SELECT 1") == 1, "connection after errors")
    await conn.close()

    # A pool of connections working at once.
    pool = await asyncpg.create_pool(DSN, min_size=5, max_size=10)

    async def count_user(user):
        async with pool.acquire() as c:
            return await c.fetchval("SELECT count(*) FROM analytics_events WHERE user_id = $1", user)

    counts = await asyncio.gather(*(count_user(u) for u in range(20)))
    check(all(c in (103, 104) for c in counts), f"pool counts {counts}")
    await pool.close()


asyncio.run(main())
print("asyncpg: ok")
