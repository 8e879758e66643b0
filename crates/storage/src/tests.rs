use std::sync::Arc;

use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::Int64Type;
use tempora_catalog::{ColumnDef, HypertableDef, TableDef};
use tempora_types::{PgType, UTC_ZONE};

use super::*;

const DAY: i64 = MICROS_PER_DAY;

fn create_table(store: &Store) -> TableDef {
    store
        .catalog()
        .transact(|txn| {
            let id = txn.allocate_id();
            let table = TableDef {
                id,
                name: "metrics".to_owned(),
                columns: vec![
                    ColumnDef {
                        name: "time".into(),
                        pg_type: PgType::Timestamptz,
                        not_null: true,
                        default_sql: None,
                        identity_always: false,
                    },
                    ColumnDef {
                        name: "value".into(),
                        pg_type: PgType::Float8,
                        not_null: false,
                        default_sql: None,
                        identity_always: false,
                    },
                ],
                hypertable: Some(HypertableDef {
                    hypertable_id: 1,
                    time_column: "time".into(),
                    chunk_interval: DAY,
                    integer_time: false,
                }),
                indexes: Vec::new(),
                checks: Vec::new(),
            };
            txn.create_table(table.clone())?;
            Ok(table)
        })
        .unwrap()
}

fn rows(table: &TableDef, times: &[i64]) -> RecordBatch {
    RecordBatch::try_new(
        table.arrow_schema(),
        vec![
            Arc::new(TimestampMicrosecondArray::from(times.to_vec()).with_timezone(UTC_ZONE)),
            Arc::new(Float64Array::from(
                times.iter().map(|t| *t as f64).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

/// (time, row id) of every live row, by time.
fn visible_rows(store: &Store, table: &TableDef) -> Vec<(i64, i64)> {
    let snapshot = store.snapshot(table.id).unwrap();
    let mut rows = Vec::new();
    for chunk in &snapshot.chunks {
        let mut batches = chunk.memtable.clone();
        for segment in &chunk.chunk.segments {
            store.verify_segment(segment).unwrap();
            batches.extend(segment::read_segment(&store.segment_path(segment)).unwrap());
        }
        for batch in batches {
            let batch = DeleteSet::filter_batch(&[&chunk.deleted], &batch, 2).unwrap();
            let times = batch
                .column(0)
                .as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
            let ids = batch.column(2).as_primitive::<Int64Type>();
            rows.extend(
                times
                    .values()
                    .iter()
                    .copied()
                    .zip(ids.values().iter().copied()),
            );
        }
    }
    rows.sort();
    rows
}

fn visible_times(store: &Store, table: &TableDef) -> Vec<i64> {
    visible_rows(store, table)
        .into_iter()
        .map(|(t, _)| t)
        .collect()
}

/// Rows to delete, named by (time, row id), as the store takes them.
fn delete_batch(store: &Store, table: &TableDef, rows: &[(i64, i64)]) -> RecordBatch {
    let (times, ids): (Vec<i64>, Vec<i64>) = rows.iter().copied().unzip();
    let times = TimestampMicrosecondArray::from(times).with_timezone(UTC_ZONE);
    let chunks = store
        .snapshot(table.id)
        .unwrap()
        .chunks_of_rows(Some(&times), rows.len())
        .unwrap();
    let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
        datafusion::arrow::datatypes::Field::new(ROWID_COLUMN, DataType::Int64, false),
        datafusion::arrow::datatypes::Field::new(CHUNK_COLUMN, DataType::UInt64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(datafusion::arrow::array::UInt64Array::from(chunks)),
        ],
    )
    .unwrap()
}

/// Deletes the live rows whose time passes `pick`.
fn delete_where(store: &Store, table: &TableDef, pick: impl Fn(i64) -> bool) -> Result<Committed> {
    let rows: Vec<(i64, i64)> = visible_rows(store, table)
        .into_iter()
        .filter(|(t, _)| pick(*t))
        .collect();
    store.commit(&[TableWrite {
        table,
        inserts: Vec::new(),
        deletes: vec![delete_batch(store, table, &rows)],
        on_conflict: OnConflict::Error,
    }])
}

#[test]
fn deletes_survive_restart_checkpoints_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<i64> = (0..100).collect();
    let table;
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        table = create_table(&store);
        store.insert(&table, vec![rows(&table, &all)]).unwrap();
        store.checkpoint().unwrap();
        // Rows in a segment and rows still in the memtable.
        store
            .insert(&table, vec![rows(&table, &[200, 201, 202])])
            .unwrap();
        assert_eq!(
            delete_where(&store, &table, |t| t < 10 || t == 201)
                .unwrap()
                .deleted,
            11
        );
        assert_eq!(store.row_count(table.id), 92);
    }
    let expected: Vec<i64> = (10..100).chain([200, 202]).collect();
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        assert_eq!(visible_times(&store, &table), expected);
        // Few deletes: the segment stays, a delete file lists them.
        store.checkpoint().unwrap();
        assert_eq!(visible_times(&store, &table), expected);
        let chunk = store.catalog().snapshot().chunks_of(table.id)[0].clone();
        assert_eq!(chunk.deletes.as_ref().unwrap().count, 10);
        assert_eq!(chunk.row_count(), 102);
    }
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        assert_eq!(visible_times(&store, &table), expected);
        assert_eq!(store.row_count(table.id), 92);
        assert_eq!(
            delete_where(&store, &table, |t| t < 50).unwrap().deleted,
            40
        );
        // Half the segment rows deleted: the checkpoint rewrites them away.
        store.checkpoint().unwrap();
        let chunk = store.catalog().snapshot().chunks_of(table.id)[0].clone();
        assert!(chunk.deletes.is_none());
        assert_eq!(chunk.row_count(), 52);
        assert_eq!(store.row_count(table.id), 52);
    }
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let expected: Vec<i64> = (50..100).chain([200, 202]).collect();
    assert_eq!(visible_times(&store, &table), expected);
    // Only the live files remain: one segment, no delete file.
    let files = fs::read_dir(dir.path().join("segments")).unwrap().count();
    assert_eq!(files, 1);
    // New rows never reuse an id.
    store.insert(&table, vec![rows(&table, &[300])]).unwrap();
    let ids: Vec<i64> = visible_rows(&store, &table).iter().map(|r| r.1).collect();
    let unique: HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len());
    assert!(*ids.last().unwrap() >= 103);
}

#[test]
fn deleting_a_row_twice_conflicts_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let table = create_table(&store);
    store
        .insert(&table, vec![rows(&table, &[1, 2, 3])])
        .unwrap();
    let stale = visible_rows(&store, &table);
    delete_where(&store, &table, |t| t == 2).unwrap();
    // A commit that read row 2 before it was deleted: its insert is not kept either.
    let stale: Vec<(i64, i64)> = stale.into_iter().filter(|r| r.0 == 2).collect();
    let deletes = delete_batch(&store, &table, &stale);
    let insert = store.attach_rowids(&table, rows(&table, &[9])).unwrap();
    let result = store.commit(&[TableWrite {
        table: &table,
        inserts: vec![insert],
        deletes: vec![deletes.clone()],
        on_conflict: OnConflict::Error,
    }]);
    assert!(matches!(result, Err(Error::Conflict { .. })));
    assert_eq!(visible_times(&store, &table), vec![1, 3]);
    // Still a conflict after the checkpoint removed the row for good.
    store.checkpoint().unwrap();
    let result = store.commit(&[TableWrite {
        table: &table,
        inserts: Vec::new(),
        deletes: vec![deletes],
        on_conflict: OnConflict::Error,
    }]);
    assert!(matches!(result, Err(Error::Conflict { .. })));
}

#[test]
fn deleting_from_a_chunk_that_was_replaced_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let table = create_table(&store);
    store.insert(&table, vec![rows(&table, &[1, 2])]).unwrap();
    let stale = delete_batch(&store, &table, &visible_rows(&store, &table)[..1]);
    // The chunk is dropped and a new one takes its time range.
    let chunk = store.snapshot(table.id).unwrap().chunks[0].chunk.id;
    store.drop_chunks(&[chunk], None).unwrap();
    store.insert(&table, vec![rows(&table, &[3])]).unwrap();
    let result = store.commit(&[TableWrite {
        table: &table,
        inserts: Vec::new(),
        deletes: vec![stale],
        on_conflict: OnConflict::Error,
    }]);
    assert!(matches!(result, Err(Error::Conflict { .. })));
    assert_eq!(visible_times(&store, &table), vec![3]);
}

#[test]
fn rows_route_to_chunks_and_survive_restart_and_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let expected: Vec<i64> = vec![-1, 5, DAY + 1, 3 * DAY, 3 * DAY + 7];
    let table;
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        table = create_table(&store);
        store
            .insert(&table, vec![rows(&table, &[3 * DAY + 7, -1, 5])])
            .unwrap();
        store
            .insert(&table, vec![rows(&table, &[DAY + 1, 3 * DAY])])
            .unwrap();
        let snapshot = store.snapshot(table.id).unwrap();
        let ranges: Vec<(i64, i64)> = snapshot
            .chunks
            .iter()
            .map(|c| (c.chunk.range_start, c.chunk.range_end))
            .collect();
        assert_eq!(
            ranges,
            vec![(-DAY, 0), (0, DAY), (DAY, 2 * DAY), (3 * DAY, 4 * DAY)]
        );
        assert_eq!(visible_times(&store, &table), expected);
    }
    // Restart: rows come back from the WAL.
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        assert_eq!(visible_times(&store, &table), expected);
        store.checkpoint().unwrap();
        assert_eq!(visible_times(&store, &table), expected);
        let state = store.catalog().snapshot();
        assert!(state.chunks.values().all(|c| c.segments.len() == 1));
        store
            .insert(&table, vec![rows(&table, &[10 * DAY])])
            .unwrap();
    }
    // Restart again: segments plus the WAL written after the checkpoint.
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let mut all = expected.clone();
    all.push(10 * DAY);
    assert_eq!(visible_times(&store, &table), all);
    assert_eq!(
        wal::list_wal_files(&dir.path().join("wal")).unwrap().len(),
        2
    );
}

#[test]
fn dropped_chunks_stay_dropped_after_replay() {
    let dir = tempfile::tempdir().unwrap();
    let table;
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        table = create_table(&store);
        store
            .insert(&table, vec![rows(&table, &[1, DAY + 1, 2 * DAY + 1])])
            .unwrap();
        store.checkpoint().unwrap();
        store
            .insert(&table, vec![rows(&table, &[2, 2 * DAY + 2])])
            .unwrap();
        let first = store.snapshot(table.id).unwrap().chunks[0].chunk.id;
        store.drop_chunks(&[first], None).unwrap();
        assert_eq!(
            visible_times(&store, &table),
            vec![DAY + 1, 2 * DAY + 1, 2 * DAY + 2]
        );
    }
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(
        visible_times(&store, &table),
        vec![DAY + 1, 2 * DAY + 1, 2 * DAY + 2]
    );
    // Only the live chunks' segment files remain.
    let files = fs::read_dir(dir.path().join("segments")).unwrap().count();
    assert_eq!(files, 2);
}

#[test]
fn a_second_process_cannot_open_the_same_directory() {
    let dir = tempfile::tempdir().unwrap();
    let _store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert!(matches!(
        Store::open(dir.path(), StoreOptions::default()),
        Err(Error::Locked { .. })
    ));
}

#[test]
fn a_corrupted_segment_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let table = create_table(&store);
    store
        .insert(&table, vec![rows(&table, &[1, 2, 3])])
        .unwrap();
    store.checkpoint().unwrap();
    let segment = store
        .catalog()
        .snapshot()
        .chunks
        .values()
        .next()
        .unwrap()
        .segments[0]
        .clone();
    let path = store.segment_path(&segment);
    let mut bytes = fs::read(&path).unwrap();
    bytes[10] ^= 1;
    fs::write(&path, bytes).unwrap();
    assert!(matches!(
        store.verify_segment(&segment),
        Err(Error::Corrupt { .. })
    ));
}

#[test]
fn null_time_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let table = create_table(&store);
    let batch = RecordBatch::try_new(
        table.arrow_schema(),
        vec![
            Arc::new(TimestampMicrosecondArray::from(vec![None, Some(1)]).with_timezone(UTC_ZONE)),
            Arc::new(Float64Array::from(vec![1.0, 2.0])),
        ],
    )
    .unwrap();
    assert!(matches!(
        store.insert(&table, vec![batch]),
        Err(Error::NullTime { .. })
    ));
    assert!(visible_times(&store, &table).is_empty());
}

#[test]
fn the_checkpoint_thread_flushes_past_the_threshold_and_bounds_memory() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        flush_threshold_bytes: 64 << 10,
    };
    let store = Store::open(dir.path(), options).unwrap();
    let table = create_table(&store);
    let mut expected = Vec::new();
    for round in 0..40i64 {
        let times: Vec<i64> = (0..2000).map(|i| round * 2000 + i).collect();
        store.insert(&table, vec![rows(&table, &times)]).unwrap();
        expected.extend(times);
        // Writers block at twice the threshold until a checkpoint frees memory.
        assert!(store.memtable_bytes.load(Ordering::Relaxed) < 4 * (64 << 10) + (256 << 10));
    }
    // Without any explicit checkpoint, segments appear.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let segments: usize = store
            .snapshot(table.id)
            .unwrap()
            .chunks
            .iter()
            .map(|c| c.chunk.segments.len())
            .sum();
        if segments > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no checkpoint ran");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(visible_times(&store, &table), expected);
    drop(store);
    // A checkpoint still running holds the store (and its LOCK) until it ends.
    let store = loop {
        match Store::open(dir.path(), StoreOptions::default()) {
            Ok(store) => break store,
            Err(Error::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(error) => panic!("{error}"),
        }
    };
    assert_eq!(visible_times(&store, &table), expected);
}

/// A commit with a catalog change counts only if the change committed:
/// a failed change leaves neither rows nor change, now or after replay.
#[test]
fn rows_committed_with_a_catalog_change_stand_or_fall_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let table;
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        table = create_table(&store);
        store.insert(&table, vec![rows(&table, &[1])]).unwrap();
        let write = |times: &[i64]| TableWrite {
            table: &table,
            inserts: vec![store.attach_rowids(&table, rows(&table, times)).unwrap()],
            deletes: Vec::new(),
            on_conflict: OnConflict::Error,
        };
        let failing = |_: &mut CatalogTxn| -> tempora_catalog::Result<()> {
            Err(tempora_catalog::Error::Conflict {
                name: "t".to_owned(),
            })
        };
        assert!(
            store
                .commit_with_catalog(&[write(&[2])], &failing, None)
                .is_err()
        );
        assert_eq!(visible_times(&store, &table), vec![1]);
        let renaming = |txn: &mut CatalogTxn| -> tempora_catalog::Result<()> {
            let mut renamed = (**txn.state().tables.get(&table.id).unwrap()).clone();
            renamed.name = "renamed".to_owned();
            txn.put_table(renamed);
            Ok(())
        };
        store
            .commit_with_catalog(&[write(&[3])], &renaming, None)
            .unwrap();
        assert_eq!(visible_times(&store, &table), vec![1, 3]);
        // Dropped without a checkpoint: the records are replayed.
    }
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(visible_times(&store, &table), vec![1, 3]);
    assert!(
        store
            .catalog()
            .snapshot()
            .table_by_name("renamed")
            .is_some()
    );
}

#[test]
fn a_point_read_selects_only_the_row_groups_it_reads() {
    // Three groups of 10, 20 and 5 rows (starting at 0, 10 and 30).
    let starts = [0, 10, 30];
    let (groups, selection) = segment::selection_in_groups(&starts, 35, &[12..14, 15..16, 31..32]);
    assert_eq!(groups, vec![1, 2]);
    // Rows of groups 1 and 2 only (25 of them): 2..4 and 5..6 of group 1,
    // then 1..2 of group 2, which starts at 20 among them.
    let expected = parquet::arrow::arrow_reader::RowSelection::from_consecutive_ranges(
        [2..4, 5..6, 21..22].into_iter(),
        25,
    );
    assert_eq!(selection, expected);
    let (groups, selection) =
        segment::selection_in_groups(&starts, 35, &[std::ops::Range { start: 0, end: 1 }]);
    assert_eq!(groups, vec![0]);
    assert_eq!(
        selection,
        parquet::arrow::arrow_reader::RowSelection::from_consecutive_ranges(
            std::iter::once(0..1),
            10
        )
    );
}

#[test]
fn a_point_read_finds_rows_in_any_row_group_of_a_segment() {
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let dir = tempfile::tempdir().unwrap();
    // More rows than one row group holds, so the segment has two.
    let rows = 300_000i64;
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("value", DataType::Float64, true),
        Field::new(ROWID_COLUMN, DataType::Int64, false),
    ]));
    // Ids ascending in the first half; in the second, rows alternate
    // between a rising and a falling run, so that every page's id range
    // overlaps every other's there, as an upsert's rows do.
    let ids: Vec<i64> = (0..rows)
        .map(|i| match (i < rows / 2, i % 2) {
            (true, _) => i,
            (false, 0) => rows + i,
            (false, _) => rows * 3 - i,
        })
        .collect();
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(TimestampMicrosecondArray::from_iter_values(0..rows)),
            Arc::new(Float64Array::from_iter_values(
                (0..rows).map(|i| i as f64 / 2.0),
            )),
            Arc::new(Int64Array::from(ids.clone())),
        ],
    )
    .unwrap();
    let segment = segment::write_segment(dir.path(), "s.parquet", &batch, Some(0)).unwrap();
    let path = dir.path().join(&segment.file_name);
    let metadata = segment::load_metadata(&path).unwrap();
    assert!(metadata.metadata().num_row_groups() > 1);
    let positions = [3usize, 149_999, 150_000, 299_999];
    let mut wanted: Vec<i64> = positions.iter().map(|p| ids[*p]).collect();
    wanted.push(rows * 5); // no such row
    wanted.sort_unstable();
    let found = segment::read_rows_by_id(&path, &metadata, ROWID_COLUMN, &wanted, &[1, 2]).unwrap();
    let mut got: Vec<(i64, f64)> = found
        .iter()
        .flat_map(|b| {
            let values = b
                .column(0)
                .as_primitive::<datafusion::arrow::datatypes::Float64Type>();
            let ids = b.column(1).as_primitive::<Int64Type>();
            (0..b.num_rows())
                .map(|r| (ids.value(r), values.value(r)))
                .collect::<Vec<_>>()
        })
        .collect();
    got.sort_by_key(|(id, _)| *id);
    let mut expected: Vec<(i64, f64)> = positions
        .iter()
        .map(|p| (ids[*p], *p as f64 / 2.0))
        .collect();
    expected.sort_by_key(|(id, _)| *id);
    assert_eq!(got, expected);
}

#[test]
fn rows_fetched_by_id_are_the_live_ones_from_memtables_and_segments_alike() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let table = create_table(&store);
    // Three commits into one chunk: its memtable holds three batches.
    for times in [&[1, 2, 3][..], &[4, 5], &[6, 7, 8, 9]] {
        store.insert(&table, vec![rows(&table, times)]).unwrap();
    }
    let live = visible_rows(&store, &table);
    let chunk = store.snapshot(table.id).unwrap().chunks[0].chunk.id;
    let id_of = |time: i64| live.iter().find(|(t, _)| *t == time).unwrap().1;
    delete_where(&store, &table, |t| t == 5).unwrap();
    // The values (time doubles as value) of the rows fetched, by time.
    let fetch = |ids: &[i64]| -> Vec<f64> {
        let batch = store.fetch_rows(table.id, chunk, ids, Some(&[1])).unwrap();
        assert_eq!(batch.num_columns(), 1);
        let mut values: Vec<f64> = batch
            .column(0)
            .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
            .values()
            .to_vec();
        values.sort_by(f64::total_cmp);
        values
    };
    for in_segments in [false, true] {
        if in_segments {
            store.checkpoint().unwrap();
            assert!(
                store.snapshot(table.id).unwrap().chunks[0]
                    .memtable
                    .is_empty()
            );
        }
        // One id, as a point change asks, in the first, middle and last batch.
        assert_eq!(fetch(&[id_of(2)]), vec![2.0], "in segments: {in_segments}");
        assert_eq!(fetch(&[id_of(4)]), vec![4.0]);
        assert_eq!(fetch(&[id_of(9)]), vec![9.0]);
        // Several, across batches, unsorted and repeated: each live row once.
        assert_eq!(
            fetch(&[id_of(8), id_of(1), id_of(4), id_of(8)]),
            vec![1.0, 4.0, 8.0]
        );
        // A deleted row and an id no row has are not found.
        assert!(fetch(&[id_of(5)]).is_empty());
        assert_eq!(fetch(&[id_of(5), id_of(6), i64::MAX]), vec![6.0]);
    }
}
