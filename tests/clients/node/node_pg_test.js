// node-postgres (pg) against tempora: parameterised queries and a Pool of
// 50 concurrent clients, as seed 004's market-replay service runs. Run by
// crates/server/tests/drivers.rs with TEMPORA_PORT set.

const assert = require("node:assert/strict");
const { Client, Pool } = require("pg");

const config = {
  host: "127.0.0.1",
  port: Number(process.env.TEMPORA_PORT),
  user: "postgres",
  database: "postgres",
};

async function main() {
  const client = new Client(config);
  await client.connect();
  await client.query(`CREATE TABLE ticks (
      time timestamptz NOT NULL, symbol text NOT NULL, price numeric(18, 6) NOT NULL,
      volume bigint, PRIMARY KEY (symbol, time))`);
  await client.query("SELECT create_hypertable('ticks', 'time', chunk_time_interval => interval '1 day')");

  const start = Date.UTC(2024, 0, 2, 14, 30);
  const symbols = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN"];
  for (const [index, symbol] of symbols.entries()) {
    const values = [];
    const params = [];
    for (let i = 0; i < 200; i++) {
      params.push(new Date(start + i * 1000), symbol, (100 + index * 10 + i / 100).toFixed(2), 10 + i);
      const n = params.length;
      values.push(`($${n - 3}, $${n - 2}, $${n - 1}, $${n})`);
    }
    const result = await client.query(`INSERT INTO ticks VALUES ${values.join(", ")}`, params);
    assert.equal(result.rowCount, 200);
  }

  // Types: numeric arrives as a string, timestamptz as a Date, bigint as a string.
  const row = (await client.query(
    "SELECT time, symbol, price, volume FROM ticks WHERE symbol = $1 ORDER BY time LIMIT 1",
    ["MSFT"],
  )).rows[0];
  assert.equal(row.symbol, "MSFT");
  assert.equal(row.price, "110.000000");
  assert.equal(row.volume, "10");
  assert.equal(row.time.getTime(), start);

  // Candles with first()/last(), as seed 004's aggregates.
  const candles = await client.query(
    `SELECT time_bucket('1 minute', time) AS bucket, first(price, time) AS open, max(price) AS high,
            min(price) AS low, last(price, time) AS close, sum(volume) AS volume
     FROM ticks WHERE symbol = $1 AND time >= $2 AND time < $3 GROUP BY 1 ORDER BY 1`,
    ["AAPL", new Date(start), new Date(start + 120 * 1000)],
  );
  assert.equal(candles.rows.length, 2);
  assert.equal(candles.rows[0].open, "100.000000");
  assert.equal(candles.rows[0].close, "100.590000");
  assert.equal(candles.rows[1].volume, String([...Array(60).keys()].reduce((a, i) => a + 70 + i, 0)));

  // A unique violation is an error with PostgreSQL's code.
  await assert.rejects(
    client.query("INSERT INTO ticks VALUES ($1, 'AAPL', 1, 1)", [new Date(start)]),
    (error) => error.code === "23505",
  );
  await client.end();

  // 50 clients at once, each running windowed queries.
  const pool = new Pool({ ...config, max: 50 });
  const windows = await Promise.all(
    [...Array(50).keys()].map(async (i) => {
      const symbol = symbols[i % symbols.length];
      const from = new Date(start + (i % 10) * 10 * 1000);
      const result = await pool.query(
        "SELECT count(*)::int AS n, avg(price)::float8 AS p FROM ticks WHERE symbol = $1 AND time >= $2 AND time < $3",
        [symbol, from, new Date(from.getTime() + 60 * 1000)],
      );
      return result.rows[0].n;
    }),
  );
  assert.deepEqual(windows, Array(50).fill(60));
  assert.equal(pool.totalCount, 50);
  await pool.end();
  console.log("node-postgres: ok");
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
