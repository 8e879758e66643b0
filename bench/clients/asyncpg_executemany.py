"""asyncpg executemany of seed 002's events into a server, timed.

Usage: asyncpg_executemany.py PORT ROWS hypertable|index
Prints the rows per second of the executemany alone (the table is created
first, as a hypertable or as a table with an index on time). Run by
tempora-bench --clients."""

import asyncio
import datetime
import json
import sys
import time

import asyncpg

CREATE = """CREATE TABLE analytics_events_ts (
    time timestamptz NOT NULL, event_name text NOT NULL, category text NOT NULL,
    user_id text, session_id text, properties jsonb, device_info jsonb)"""
INSERT = """INSERT INTO analytics_events_ts
    (time, event_name, category, user_id, session_id, properties, device_info)
    VALUES ($1, $2, $3, $4, $5, $6, $7)"""


async def main(port, rows, setup):
    conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    await conn.execute("DROP TABLE IF EXISTS analytics_events_ts")
    await conn.execute(CREATE)
    if setup == "hypertable":
        await conn.execute("SELECT create_hypertable('analytics_events_ts', 'time')")
    else:
        await conn.execute("CREATE INDEX ON analytics_events_ts (time DESC)")
    start = datetime.datetime(2024, 3, 1, tzinfo=datetime.timezone.utc)
    device = json.dumps({"os": "android", "app": "4.2.1"})
    values = [
        (start + datetime.timedelta(milliseconds=250 * i), f"event_{i % 20}",
         ("page", "click", "purchase")[i % 3], f"user_{i % 5000}", f"session_{i % 800}",
         json.dumps({"page": f"/p/{i % 50}", "ms": i % 1000}), device)
        for i in range(rows)
    ]
    began = time.perf_counter()
    await conn.executemany(INSERT, values)
    seconds = time.perf_counter() - began
    count = await conn.fetchval("SELECT count(*) FROM analytics_events_ts")
    if count != rows:
        raise SystemExit(f"{count} rows after executemany of {rows}")
    print(f"{rows / seconds:.0f}")
    await conn.close()


asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
