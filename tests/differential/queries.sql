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
SELECT '{"a":1, "b":{"c":[1,2,3]}}'::jsonb @> '{"b":{"c":[3,1]}}'::jsonb;
SELECT '{"a":1}'::jsonb @> '{"a":1.0}'::jsonb, '{"a":1}'::jsonb @> '{"a":2}'::jsonb, '{"a":1}'::jsonb <@ '{"a":1,"b":2}'::jsonb;
SELECT '[1,2,[3]]'::jsonb @> '[[3]]'::jsonb, '[1,2]'::jsonb @> '1'::jsonb, '1'::jsonb @> '[1]'::jsonb, '"x"'::jsonb @> '"x"'::jsonb;
SELECT '[1,2,[3]]'::jsonb @> '3'::jsonb, '{"a":[1]}'::jsonb @> '{"a":1}'::jsonb;
SELECT '{"a":1, "b":null}'::jsonb ? 'b', '{"a":1}'::jsonb ? 'c', '["x","y"]'::jsonb ? 'y', '"x"'::jsonb ? 'x';
SELECT '{"a":1, "b":2}'::jsonb ?| array['c','b'], '{"a":1, "b":2}'::jsonb ?& array['a','c'], '{"a":1, "b":2}'::jsonb ?& '{a,b}';
SELECT NULL::jsonb @> '{}'::jsonb, '{}'::jsonb @> '{}'::jsonb, '[]'::jsonb @> '[]'::jsonb;
SELECT ARRAY[1,2,3] @> ARRAY[1,3], ARRAY[1] <@ ARRAY[1,2];
SELECT jsonb_typeof('{"a":1}'), jsonb_typeof('[1]'), jsonb_typeof('"s"'), jsonb_typeof('1.5'), jsonb_typeof('true'), jsonb_typeof('null'), jsonb_typeof(NULL);
SELECT jsonb_array_length('[1,2,[3]]'), jsonb_array_length('[]'), json_array_length('[1, 2]'), jsonb_array_length(NULL);
SELECT jsonb_array_length('{"a":1}');
SELECT jsonb_array_length('5');
SELECT jsonb_typeof('{"a":[1]}'::jsonb -> 'a'), pg_typeof(jsonb_array_length('[1]'))::text;
SELECT generate_series(1, 3);
SELECT generate_series(1, 3) AS n, 'x' AS t;
SELECT x, generate_series(1, x) FROM (VALUES (1), (2)) v(x) ORDER BY 1, 2;
SELECT generate_series('2024-01-01 00:00+00'::timestamptz, '2024-01-01 02:00+00'::timestamptz, interval '1 hour');
SELECT count(*) FROM (SELECT generate_series(1, 10)) s;
SELECT * FROM generate_series(1, 2) g;
SELECT '1e-400'::float8;
SELECT '0.0e-400'::float8, '4e-320'::float8, '1e-40'::float4;
SELECT '1e400'::float4;
SELECT '1e-50'::float4;
SELECT 'abc'::float4;
SELECT pg_typeof(column1)::text, column1 FROM (VALUES (1::int), (-5), (+2)) v;
-- sum of a bigint is a numeric, which does not wrap past the bigint range;
-- of a smallint or an integer a bigint; of a numeric a numeric.
SELECT sum(x), pg_typeof(sum(x))::text FROM (VALUES (9223372036854775807::bigint), (9223372036854775807::bigint), (5::bigint)) v(x);
SELECT sum(y), pg_typeof(sum(y))::text, sum(z), pg_typeof(sum(z))::text FROM (VALUES (2147483647::integer, 32767::smallint), (2147483647::integer, 1::smallint)) v(y, z);
SELECT sum(counter), pg_typeof(sum(counter))::text, sum(price), pg_typeof(sum(price))::text FROM readings;
SELECT sensor_id, sum(x) FROM (SELECT sensor_id, counter::bigint * 1000000000000000 AS x FROM readings) s GROUP BY sensor_id ORDER BY sensor_id;
SELECT id, sum(counter::bigint) OVER (ORDER BY id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM readings ORDER BY id LIMIT 10;
SELECT sum(x) FROM (VALUES (1::bigint)) v(x) WHERE false;
SELECT sum(name) FROM sensors;
SELECT pg_typeof(price)::text, pg_typeof(price * 2)::text, pg_typeof(note::varchar(3))::text FROM readings LIMIT 1;
-- pg_column_size: the bytes PostgreSQL stores a table's value in.
SELECT id, pg_column_size(body), pg_column_size(raw), pg_column_size(blob), pg_column_size(id) FROM documents ORDER BY id;
SELECT sum(pg_column_size(body)), percentile_cont(0.5) WITHIN GROUP (ORDER BY pg_column_size(body)) FROM documents;
SELECT id, pg_column_size(note), pg_column_size(price), pg_column_size(recorded_at), pg_column_size(duration), pg_column_size(active), pg_column_size(day), pg_column_size(reading) FROM readings ORDER BY id LIMIT 12;
-- Making json and jsonb: to_json(b), json(b)_build_object/array, json(b)_agg, jsonb || and -.
SELECT id, to_json(recorded_at), to_jsonb(note), to_json(active), to_json(day), to_json(duration), to_jsonb(reading), to_json(sensor_id) FROM readings ORDER BY id LIMIT 8;
SELECT id, json_build_object('id', id, 'at', recorded_at, 'note', note, 'ok', active), jsonb_build_object('id', id, 'reading', reading, 'note', note), json_build_array(id, note, day), jsonb_build_array(id, active, NULL) FROM readings ORDER BY id LIMIT 8;
SELECT id, body || '{"extra": [1]}', body || '[true]'::jsonb, body - 'a', body - 0, to_json(body), json_build_object('doc', body, 'raw', raw) FROM documents WHERE body IS NOT NULL AND jsonb_typeof(body) <> 'string' AND jsonb_typeof(body) <> 'number' ORDER BY id;
SELECT sensor_id, json_agg(id ORDER BY id), jsonb_agg(note ORDER BY id DESC), count(*) FROM readings WHERE id < 30 GROUP BY sensor_id ORDER BY sensor_id;
SELECT json_agg(name ORDER BY sensor_id), jsonb_agg(jsonb_build_object('name', name, 'site', site) ORDER BY name) FROM sensors;
SELECT json_agg(id) FROM readings WHERE false;
SELECT jsonb_build_object(NULL, 1);
SELECT json_build_object('a');
SELECT '1'::jsonb - 'a';
SELECT '{"a": 1}'::jsonb - 1;
SELECT '{"a": 1, "b": 2, "c": 3}'::jsonb - ARRAY['a', 'c'], '["x", "y", "x"]'::jsonb - 'x', '[1, 2, 3]'::jsonb - -1, '{"a": 1}'::jsonb || '{"a": 2}'::jsonb;
-- The jsonb set-returning functions in a select list.
SELECT jsonb_array_elements('[1, "a", {"b": 2}, null]'), 1 AS x;
SELECT jsonb_array_elements_text('[1, "a", null, {"b": 2}]');
SELECT jsonb_object_keys('{"b": 1, "a": 2, "aa": 3}');
SELECT json_object_keys('{"b": 1, "a": 2}');
SELECT id, jsonb_object_keys(body) AS k FROM documents WHERE jsonb_typeof(body) = 'object' ORDER BY id, k;
SELECT jsonb_array_elements('{"a": 1}');
SELECT jsonb_object_keys('[1]');
SELECT jsonb_array_elements_text('1');
-- variance and every are var_samp and bool_and; a float variance can differ in its last digit.
SELECT variance(x), every(x > 1), every(x > 0) FROM (VALUES (1::float8), (2), (3)) v(x);
-- date ± interval is a timestamp.
SELECT id, day + interval '1 day', day - interval '90 minutes', interval '1 month' + day, pg_typeof(day + interval '1 hour')::text FROM readings ORDER BY id LIMIT 8;
SELECT count(*) FROM readings WHERE day + interval '12 hours' > timestamp '2024-03-15 00:00';
-- A value cast to text is written by its type's output function, as on the wire.
SELECT id, recorded_at::text, day::text, duration::text, price::text, active::text, reading::text, id::text, (reading * 2)::text FROM readings ORDER BY 1 LIMIT 12;
SELECT 'at ' || recorded_at, day || '', recorded_at::varchar(10), array[id, sensor_id]::text, (id + 1)::text FROM readings ORDER BY id LIMIT 6;
SELECT id, blob::text, body::text FROM documents ORDER BY id;
SELECT 1e20::float8::text, '-infinity'::float8::text, 'NaN'::float4::text, 1.5::float4::text, interval '1 year 2 mons -3 days 04:05:06'::text, timestamp '2024-02-29 12:00:00.5'::text;
-- Unnamed select items are named as PostgreSQL names them.
SELECT id::text, 1::text, (id + 1)::text, CASE WHEN id > 1 THEN 'a' ELSE note END, CASE WHEN id > 1 THEN 1 END, (note), sensors.name, count(*) OVER () FROM readings JOIN sensors USING (sensor_id) ORDER BY readings.id LIMIT 3;
SELECT 1 AS a, 2 AS a, id, id::text, (SELECT max(sensor_id) FROM sensors s), (SELECT 1), (SELECT sensor_id AS sid FROM sensors LIMIT 1) FROM readings ORDER BY 3 LIMIT 2;
-- SIMILAR TO matches the whole text, % and _ as wildcards, with an optional escape.
SELECT name, name SIMILAR TO '%a', name NOT SIMILAR TO '_e%', name SIMILAR TO '(alpha|beta)', name SIMILAR TO 'g#%%' ESCAPE '#', site SIMILAR TO '[ns]%' FROM sensors ORDER BY sensor_id;
SELECT 'a.c' SIMILAR TO 'a.c', 'abc' SIMILAR TO 'a.c', NULL SIMILAR TO 'a', similar_to_escape('a%_.'), similar_to_escape('a%', '');
SELECT 'abc' SIMILAR TO 'a' ESCAPE 'xy';
SELECT sign(-3), sign(2.5::float8), sign(0::float8), sign(-2.5::numeric);
-- An integer cast out of its type's range is 22003, in PostgreSQL's words.
SELECT 99999999999::int4;
SELECT 1::int2 * 40000::int2;
SELECT reading::int2 FROM readings ORDER BY id LIMIT 3;
-- Items whose names differ only in casts are separate columns.
SELECT -10 / 3, (-10)::int8 / 3, (id + 1)::float8 * 2, (id + 1) * 2 FROM readings ORDER BY id LIMIT 3;
-- AT TIME ZONE: a timestamptz becomes the zone's wall-clock time, a timestamp that time's instant.
SELECT id, recorded_at AT TIME ZONE 'UTC', recorded_at AT TIME ZONE 'America/New_York', (recorded_at AT TIME ZONE 'UTC') AT TIME ZONE 'Asia/Kolkata', recorded_at AT TIME ZONE '+02', pg_typeof(recorded_at AT TIME ZONE 'UTC')::text FROM readings ORDER BY id LIMIT 6;
SELECT date_trunc('day', recorded_at AT TIME ZONE 'Asia/Tokyo') AS day, count(*) FROM readings GROUP BY 1 ORDER BY 1;
SELECT timestamp '2024-11-03 01:30' AT TIME ZONE 'America/New_York', timestamp '2024-03-10 02:30' AT TIME ZONE 'America/New_York', timestamptz '2024-03-01 10:00+00' AT TIME ZONE '-05:30';
SELECT now() AT TIME ZONE 'Nowhere/X';
