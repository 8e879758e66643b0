-- Run on tempora and on PostgreSQL 15; every result must be equal in text
-- format, row for row. Statements are separated by lines ending in ';'.
-- The tables `sensors` and `readings` are created and filled by the test.

SELECT count(*) FROM readings;
SELECT * FROM readings ORDER BY id;
SELECT * FROM sensors ORDER BY sensor_id;
-- A float sum depends on the order of additions; compare it rounded.
SELECT sensor_id, count(*), round(sum(reading)::numeric, 6), min(reading), max(reading), sum(counter) FROM readings GROUP BY sensor_id ORDER BY sensor_id;
SELECT sensor_id, round(avg(reading)::numeric, 6) FROM readings GROUP BY sensor_id ORDER BY sensor_id;
SELECT r.id, s.name, s.site, r.reading FROM readings r JOIN sensors s ON s.sensor_id = r.sensor_id WHERE r.reading > 50 ORDER BY r.id;
SELECT s.name, count(r.id) FROM sensors s LEFT JOIN readings r ON r.sensor_id = s.sensor_id GROUP BY s.name ORDER BY s.name;
WITH per_site AS (SELECT s.site, r.reading FROM readings r JOIN sensors s USING (sensor_id)) SELECT site, count(*), max(reading) FROM per_site GROUP BY site ORDER BY site;
SELECT id, sensor_id, reading, row_number() OVER (PARTITION BY sensor_id ORDER BY recorded_at, id) AS rn FROM readings ORDER BY sensor_id, rn LIMIT 40;
SELECT id, reading, sum(counter) OVER (ORDER BY id) AS running FROM readings ORDER BY id LIMIT 25;
SELECT id, lag(reading) OVER (PARTITION BY sensor_id ORDER BY id) AS previous FROM readings ORDER BY id LIMIT 30;
SELECT sensor_id, count(*) FROM readings GROUP BY sensor_id HAVING count(*) > 30 ORDER BY sensor_id;
SELECT id, recorded_at FROM readings WHERE recorded_at >= '2024-03-02 00:00:00+00' AND recorded_at < '2024-03-03 00:00:00+00' ORDER BY recorded_at, id;
SELECT id FROM readings WHERE sensor_id IN (SELECT sensor_id FROM sensors WHERE site = 'north') ORDER BY id LIMIT 20;
SELECT id, note FROM readings WHERE note IS NULL ORDER BY id LIMIT 10;
SELECT id, coalesce(note, 'none') FROM readings ORDER BY id LIMIT 15;
SELECT id, CASE WHEN reading > 75 THEN 'high' WHEN reading > 25 THEN 'mid' ELSE 'low' END AS band FROM readings ORDER BY id LIMIT 20;
SELECT upper(name), lower(site), length(name), name || '-' || site FROM sensors ORDER BY sensor_id;
SELECT id, reading FROM readings ORDER BY reading DESC, id LIMIT 10 OFFSET 5;
SELECT DISTINCT site FROM sensors ORDER BY site;
SELECT count(DISTINCT sensor_id) FROM readings;
SELECT active, count(*) FROM readings GROUP BY active ORDER BY active;
SELECT id, price, price * 2, price + 0.005 FROM readings ORDER BY id LIMIT 12;
SELECT sum(price), min(price), max(price) FROM readings;
SELECT id, day, duration FROM readings ORDER BY id LIMIT 12;
SELECT id, reading::integer, counter::double precision, counter % 7 FROM readings ORDER BY id LIMIT 12;
SELECT 0.5::float8::integer, 1.5::float8::integer, 2.5::float8::integer, (-2.5)::float8::bigint, 65.5::real::smallint;
SELECT recorded_at + interval '1 hour', recorded_at - interval '1 day' FROM readings ORDER BY id LIMIT 8;
SELECT id FROM readings WHERE reading BETWEEN 10 AND 20 ORDER BY id;
SELECT max(recorded_at) - min(recorded_at) FROM readings;
SELECT id, recorded_at - '2024-03-01 00:00:00+00'::timestamptz FROM readings ORDER BY id LIMIT 10;
SELECT interval '1 minute' * 1.5, 2 * interval '1 day', interval '1 hour' / 4, interval '1 month' * 0.5;
-- A VALUES column's NULLs take the type of its typed rows.
SELECT x FROM (VALUES (interval '1 day'), (NULL), (interval '2 hours')) v(x) ORDER BY x;
SELECT x, y FROM (VALUES (NULL, 1), (timestamptz '2024-01-01 00:00+00', 2), (NULL, NULL)) v(x, y) ORDER BY y;
SELECT j FROM (VALUES (NULL), ('[1, 2]'::jsonb)) v(j) ORDER BY j;
-- Intervals compare by length, a month as 30 days and a day as 24 hours.
SELECT interval '1 day' = interval '24 hours', interval '40 days' < interval '1 mon', interval '25 hours' > interval '1 day', interval '1 mon' BETWEEN interval '29 days' AND interval '31 days', interval '1 mon' <> interval '30 days', interval '-1 day' < interval '1 hour';
SELECT x FROM (VALUES (interval '40 days'), (interval '1 mon 1 hour'), (interval '29 days 23 hours'), (interval '-1 day'), (interval '23 hours')) v(x) ORDER BY x;
SELECT x FROM (VALUES (interval '40 days'), (interval '1 mon 1 hour'), (interval '29 days 23 hours'), (interval '-1 day'), (interval '23 hours')) v(x) ORDER BY x DESC;
SELECT id, duration FROM readings WHERE duration > interval '2 days' ORDER BY duration, id LIMIT 10;
SELECT count(*) FROM readings WHERE duration BETWEEN interval '12 hours' AND interval '1 day 12 hours';
SELECT count(*) FROM readings WHERE duration NOT BETWEEN interval '12 hours' AND interval '1 day 12 hours';
SELECT NULL::integer, true, false, 'a''b', 1.5::real, 2::smallint, 3::bigint;
SELECT 7 / 2, 7 % 3, -7 / 2, 2 ^ 10;
SELECT id, sensor_id FROM readings WHERE NOT active AND sensor_id <> 3 ORDER BY id LIMIT 10;
SELECT nonexistent FROM readings;
SELECT * FROM no_such_table;
SELECT 1 / 0;
INSERT INTO readings (id) VALUES ('not a number');
SELECT g, g * 2 FROM generate_series(1, 4) g ORDER BY g;
SELECT i FROM generate_series(2, 3) AS s(i) ORDER BY i;
SELECT id + 1, id + 1, id * 2 FROM readings ORDER BY id LIMIT 3;
SELECT count(*) FROM (SELECT sensor_id, sensor_id FROM readings) s;
SELECT 2.5::numeric::int, (-2.5)::numeric::int, 2.4999::numeric(10,4)::bigint, 0.5::numeric::smallint, (-0.5)::numeric::int;
-- Two scalar subqueries in one select list, both named after their function.
SELECT (SELECT count(*) FROM readings), (SELECT max(sensor_id) FROM sensors);
-- Views (expanded into the statements that read them).
CREATE VIEW sensor_counts AS SELECT s.name, count(r.id) AS n, max(r.reading) AS top FROM sensors s LEFT JOIN readings r USING (sensor_id) GROUP BY s.name;
SELECT * FROM sensor_counts ORDER BY name;
SELECT c.name, c.n FROM sensor_counts c JOIN sensors s ON s.name = c.name WHERE s.site = 'north' ORDER BY 1;
-- UPDATE and DELETE (these change the tables: keep them last). RETURNING
-- rows come in storage order, which SQL leaves open: compared as sets.
/* any order */ UPDATE readings SET reading = reading * 2, note = upper(note) WHERE sensor_id = 2 AND reading < 30 RETURNING id, reading, note;
/* any order */ UPDATE readings SET price = price + 1.5, counter = counter - 1 WHERE id IN (SELECT id FROM readings WHERE active ORDER BY id LIMIT 10) RETURNING id, price, counter;
/* any order */ UPDATE readings r SET note = s.name || '/' || s.site FROM sensors s WHERE s.sensor_id = r.sensor_id AND r.id % 9 = 0 RETURNING r.id, r.note;
/* any order */ UPDATE readings SET day = day + 1, duration = duration + interval '1 hour' WHERE id < 5 RETURNING id, day, duration;
/* any order */ UPDATE readings SET note = reading WHERE id = 7 RETURNING note;
/* any order */ UPDATE readings SET recorded_at = recorded_at + interval '2 days' WHERE id BETWEEN 20 AND 24 RETURNING id, recorded_at;
SELECT * FROM readings ORDER BY id;
/* any order */ DELETE FROM readings WHERE reading > 90 RETURNING id, sensor_id;
/* any order */ DELETE FROM readings USING sensors WHERE sensors.sensor_id = readings.sensor_id AND sensors.name = 'gamma' AND readings.id > 150 RETURNING readings.id;
/* any order */ DELETE FROM readings WHERE sensor_id = (SELECT max(sensor_id) FROM readings) AND NOT active RETURNING *;
SELECT count(*), sum(counter), sum(price) FROM readings;
SELECT * FROM readings ORDER BY id;
/* any order */ UPDATE sensors SET site = NULL WHERE sensor_id = 5 RETURNING *;
/* any order */ DELETE FROM sensors WHERE site IS NULL RETURNING sensor_id, name;
SELECT * FROM sensors ORDER BY sensor_id;
SELECT * FROM sensor_counts ORDER BY name;
-- Keys and upserts (the tables have primary keys; sensors.name is unique).
INSERT INTO sensors VALUES (1, 'dup', 'nowhere');
INSERT INTO sensors VALUES (9, 'alpha', 'north');
/* any order */ INSERT INTO sensors VALUES (1, 'dup', 'x1'), (6, 'zeta', 'x2'), (10, 'beta', 'x3') ON CONFLICT DO NOTHING RETURNING *;
/* any order */ INSERT INTO sensors VALUES (7, 'eta', 'north') ON CONFLICT (sensor_id) DO NOTHING RETURNING *;
/* any order */ INSERT INTO sensors VALUES (2, 'beta2', NULL), (8, 'theta', NULL) ON CONFLICT (sensor_id) DO UPDATE SET name = excluded.name || '/' || sensors.name, site = coalesce(excluded.site, sensors.site) RETURNING *;
INSERT INTO sensors VALUES (3, 'g', 'n'), (3, 'h', 'm') ON CONFLICT (sensor_id) DO UPDATE SET name = excluded.name;
INSERT INTO sensors VALUES (3, 'g', 'n') ON CONFLICT (site) DO NOTHING;
SELECT * FROM sensors ORDER BY sensor_id;
/* any order */ INSERT INTO readings SELECT id + 100, sensor_id, recorded_at, reading, counter, price, active, note, day, duration FROM readings WHERE id < 160 ON CONFLICT (id) DO NOTHING RETURNING id;
/* any order */ INSERT INTO readings AS r SELECT id, sensor_id, recorded_at, reading + 1000, counter, price, active, note, day, duration FROM readings WHERE id % 10 = 0 ON CONFLICT (id) DO UPDATE SET reading = excluded.reading, note = 'upserted ' || r.counter WHERE r.active RETURNING id, reading, note;
UPDATE readings SET id = id + 1 WHERE id = 10;
SELECT * FROM readings ORDER BY id;
SELECT '2024-01-02 00:00+00'::timestamptz, '2024-01-02 03:04:05.25-02'::timestamptz, '2024-02-29'::date, '1 day 2 hours'::interval, '2024-01-01 10:00'::timestamp;
SELECT count(*) FROM readings WHERE recorded_at >= '2024-01-01 00:00+00' AND day < '2030-01-01';
SELECT count(*) FROM readings WHERE recorded_at BETWEEN '2024-01-01T00:00:00Z' AND '2030-01-01T00:00:00Z';
SELECT '{"b":1,  "a":[2, {"d":null,"c":true}], "e": 1.50}'::jsonb, '[1,  2]'::json, 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'::uuid, 'abcdef'::varchar(3), 'ab'::varchar(5);
SELECT '{"a":1}'::jsonb = '{ "a" : 1 }'::jsonb, ('{"a": {"b":  [1,2]}}'::jsonb -> 'a')::text;
SELECT 'not json'::jsonb;
SELECT 'not-a-uuid'::uuid;
SELECT pg_typeof(column1)::text, column1 FROM (VALUES ('2024-01-01'::timestamptz), ('2024-01-02'::date), (NULL)) v;
SELECT pg_typeof(column1)::text, column1 FROM (VALUES ('2024-01-02'::date), ('2024-01-01 10:00'::timestamp), ('2024-01-03')) v;
SELECT pg_typeof(column1)::text, column1 FROM (VALUES ('a'::text), ('b'::varchar(3))) v;
SELECT pg_typeof(column1)::text, column1 FROM (VALUES ('{"b":1, "a":2}'::jsonb), ('[]'), (NULL)) v;
SELECT pg_typeof(column1)::text, column1 FROM (VALUES (1.5::float8), (2)) v;
SELECT pg_typeof(column1)::text, column1 FROM (VALUES (1::int2), (2::int8), (3)) v;
SELECT pg_typeof(column1)::text, column1 FROM (VALUES (1::int4), (2.5), ('3')) v;
SELECT pg_typeof(column1)::text, column1 FROM (VALUES (interval '1 day'), ('2 hours')) v;
SELECT 9223372036854775807 + 1;
SELECT (-9223372036854775807 - 1) - 1;
SELECT 4611686018427387904 * 2;
SELECT 2147483647::int4 + 1::int4;
SELECT 32767::int2 * 2::int2;
SELECT 5 + 3, 5 - 3, 5 * 3, 2::int2 + 3::int2, 9223372036854775806 + 1;
SELECT to_char('2024-01-05 13:04:05.123456+00'::timestamptz, 'YYYY-MM-DD HH24:MI:SS.US TZ'), to_char('2024-12-31 23:59:59+00'::timestamptz, 'FMDay, FMDDth FMMonth YYYY HH12:MI:SS PM');
SELECT to_char(recorded_at, 'IYYY-"W"IW ID Dy Mon Q') FROM readings ORDER BY id LIMIT 5;
SELECT to_char('2024-03-22'::date, 'DD/MM/YY'), to_char('2024-03-22 10:00'::timestamp, 'HH24hMI [TZ] OF');
SELECT '1e400'::float8;
SELECT '3.4e39'::float4;
SELECT '99999999999'::int;
SELECT '12.5'::int;
SELECT ' 12 '::int, '  -7'::int8, '1.5'::float4, 'NaN'::float8, '-Infinity'::float8, '12.345'::numeric(5,2);
