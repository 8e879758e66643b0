-- pgbench against tempora (crates/server/tests/drivers.rs runs it with
-- -c 20): one insert and two reads per transaction, by random device.
\set device random(1, 100)
INSERT INTO pgbench_readings (time, device, value) VALUES (now(), :device, random());
SELECT count(*) FROM pgbench_readings WHERE device = :device;
SELECT time_bucket('1 minute', time), avg(value) FROM pgbench_readings WHERE device = :device GROUP BY 1;
