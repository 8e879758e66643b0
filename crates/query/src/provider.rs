//! The DataFusion table over a tempora table: chunk exclusion, then a scan of
//! each remaining chunk's segment files (Parquet, with statistics pruning) and
//! unflushed memtable rows.
//!
//! ```text
//! ChunkScanExec: chunks=2/30 [_hyper_1_29_chunk, _hyper_1_30_chunk]
//!   DeletedRowsFilterExec (only when some of the chunks' rows are deleted)
//!     UnionExec
//!       DataSourceExec (Parquet: the chunks' segment files, predicate pushed down)
//!       DataSourceExec (memory: the chunks' memtable batches)
//! ```
//!
//! Stored rows end with a hidden row id column. Queries do not see it;
//! UPDATE and DELETE scan their target through [`rowid_scan_name`], whose
//! table has the row id as its last column.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{
    Between, BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType,
};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{ChildStats, Statistics, StatisticsArgs};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::StreamExt;

use tempora_catalog::TableDef;
use tempora_storage::{ChunkSnapshot, DeleteSet, Store};

use crate::visibility::SessionReads;
use tempora_types::datetime::MICROS_PER_DAY;

/// A table (plain or hypertable) as DataFusion sees it.
/// Below this many rows a scan uses a single partition.
const SMALL_SCAN_ROWS: u64 = 64 * 1024;

/// The name under which a table's rows come with their row ids (the last
/// column): what UPDATE and DELETE scan. No user table can have it.
pub fn rowid_scan_name(table: &str) -> String {
    format!("{ROWID_SCAN_PREFIX}{table}")
}

pub(crate) const ROWID_SCAN_PREFIX: &str = "__tempora_rows_of__";

#[derive(Debug)]
pub struct TemporaTable {
    reads: Arc<SessionReads>,
    table: Arc<TableDef>,
    /// What queries see: the table's columns, or with `with_rowid` its storage schema.
    schema: SchemaRef,
    storage_schema: SchemaRef,
}

impl TemporaTable {
    pub fn new(reads: Arc<SessionReads>, table: Arc<TableDef>) -> Self {
        Self::build(reads, table, false)
    }

    /// The table with its row ids as the last column.
    pub fn with_rowid(reads: Arc<SessionReads>, table: Arc<TableDef>) -> Self {
        Self::build(reads, table, true)
    }

    fn build(reads: Arc<SessionReads>, table: Arc<TableDef>, with_rowid: bool) -> Self {
        let storage_schema = table.storage_schema();
        let schema = if with_rowid {
            storage_schema.clone()
        } else {
            table.arrow_schema()
        };
        TemporaTable {
            reads,
            table,
            schema,
            storage_schema,
        }
    }

    fn store(&self) -> &Arc<Store> {
        self.reads.store()
    }

    fn time_column(&self) -> Option<&str> {
        self.table
            .hypertable
            .as_ref()
            .map(|h| h.time_column.as_str())
    }
}

/// Inclusive bounds on the time dimension implied by a query's filters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeRange {
    pub lower: i64,
    pub upper: i64,
}

impl TimeRange {
    const ALL: TimeRange = TimeRange {
        lower: i64::MIN,
        upper: i64::MAX,
    };

    fn overlaps_chunk(&self, start: i64, end: i64) -> bool {
        start <= self.upper && end > self.lower
    }
}

/// A literal as a value of the time dimension (microseconds, or integer time).
fn dimension_value(value: &ScalarValue) -> Option<i64> {
    Some(match value {
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000)?,
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000)?,
        ScalarValue::TimestampMicrosecond(Some(v), _) => *v,
        ScalarValue::TimestampNanosecond(Some(v), _) => v.div_euclid(1_000),
        ScalarValue::Date32(Some(days)) => *days as i64 * MICROS_PER_DAY,
        ScalarValue::Int16(Some(v)) => *v as i64,
        ScalarValue::Int32(Some(v)) => *v as i64,
        ScalarValue::Int64(Some(v)) => *v,
        _ => return None,
    })
}

fn is_time_column(expr: &Expr, time_column: &str) -> bool {
    match expr {
        Expr::Column(column) => column.name == time_column,
        // Casts between timestamp units and zones keep the order of values.
        Expr::Cast(cast) => is_time_column(&cast.expr, time_column),
        _ => false,
    }
}

fn literal(expr: &Expr) -> Option<i64> {
    match expr {
        Expr::Literal(value, _) => dimension_value(value),
        Expr::Cast(cast) => literal(&cast.expr),
        _ => None,
    }
}

/// Narrows `range` by one filter conjunct, if it constrains the time column.
fn narrow(range: &mut TimeRange, expr: &Expr, time_column: &str) {
    match expr {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::And,
            right,
        }) => {
            narrow(range, left, time_column);
            narrow(range, right, time_column);
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (op, value) = if is_time_column(left, time_column) {
                match literal(right) {
                    Some(v) => (*op, v),
                    None => return,
                }
            } else if is_time_column(right, time_column) {
                match (literal(left), op.swap()) {
                    (Some(v), Some(swapped)) => (swapped, v),
                    _ => return,
                }
            } else {
                return;
            };
            match op {
                Operator::Gt => range.lower = range.lower.max(value.saturating_add(1)),
                Operator::GtEq => range.lower = range.lower.max(value),
                Operator::Lt => range.upper = range.upper.min(value.saturating_sub(1)),
                Operator::LtEq => range.upper = range.upper.min(value),
                Operator::Eq => {
                    range.lower = range.lower.max(value);
                    range.upper = range.upper.min(value);
                }
                _ => {}
            }
        }
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) if is_time_column(expr, time_column) => {
            if let (Some(low), Some(high)) = (literal(low), literal(high)) {
                range.lower = range.lower.max(low);
                range.upper = range.upper.min(high);
            }
        }
        _ => {}
    }
}

/// The time range a set of (ANDed) filters allows.
pub fn time_range(filters: &[Expr], time_column: &str) -> TimeRange {
    let mut range = TimeRange::ALL;
    for filter in filters {
        narrow(&mut range, filter, time_column);
    }
    range
}

#[async_trait]
impl TableProvider for TemporaTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Filters narrow which chunks and row groups are read; DataFusion still
        // applies them to the rows.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(snapshot) = self.reads.table(self.table.id) else {
            return Err(datafusion::error::DataFusionError::Plan(format!(
                "relation \"{}\" does not exist",
                self.table.name
            )));
        };
        let range = match self.time_column() {
            Some(column) => time_range(filters, column),
            None => TimeRange::ALL,
        };
        let total_chunks = snapshot.chunks.len();
        let chunks: Vec<&ChunkSnapshot> = snapshot
            .chunks
            .iter()
            .filter(|c| range.overlaps_chunk(c.chunk.range_start, c.chunk.range_end))
            .collect();
        // A small table is read by one partition, so `SELECT * FROM t` returns
        // rows in the order they were written, as PostgreSQL's heap does for a
        // table that was only appended to; splitting it gains nothing.
        let uncommitted = self.reads.uncommitted_rows(self.table.id);
        let rows: u64 = chunks.iter().map(|c| c.row_count()).sum::<u64>()
            + uncommitted.iter().map(|b| b.num_rows() as u64).sum::<u64>();
        // Rows deleted by committed statements, and by the open transaction.
        let staged_deletes = self.reads.staged_deletes(self.table.id);
        let delete_sets: Vec<DeleteSet> = chunks
            .iter()
            .map(|c| c.deleted.clone())
            .chain(std::iter::once(staged_deletes))
            .filter(|d| !d.is_empty())
            .collect();
        let rowid_index = self.storage_schema.fields().len() - 1;
        let output_columns: Vec<usize> = match projection {
            Some(indices) => indices.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        // The sources read the row id too when they must filter by it.
        let mut source_columns = output_columns.clone();
        if !delete_sets.is_empty() && !source_columns.contains(&rowid_index) {
            source_columns.push(rowid_index);
        }
        let source_schema = Arc::new(self.storage_schema.project(&source_columns)?);
        let partitions = if rows < SMALL_SCAN_ROWS {
            1
        } else {
            state.config().target_partitions().max(1)
        };
        let projected_schema = Arc::new(self.schema.project(&output_columns)?);
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();

        let mut files = Vec::new();
        for chunk in &chunks {
            for segment in &chunk.chunk.segments {
                self.store()
                    .verify_segment(segment)
                    .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
                let path = self.store().segment_path(segment);
                files.push(PartitionedFile::new(
                    path.to_string_lossy().to_string(),
                    segment.byte_size,
                ));
            }
        }
        if !files.is_empty() {
            // Segment files never change (a rewrite writes a new file), so
            // their footers and page indexes are read once per process.
            let runtime = state.runtime_env();
            let object_store = runtime.object_store(ObjectStoreUrl::local_filesystem())?;
            let metadata_cache = runtime.cache_manager.get_file_metadata_cache();
            let mut source = ParquetSource::new(self.storage_schema.clone())
                .with_parquet_file_reader_factory(Arc::new(CachedParquetFileReaderFactory::new(
                    object_store,
                    metadata_cache,
                )));
            if let Some(predicate) = conjunction(filters.iter().cloned()) {
                let df_schema = DFSchema::try_from(self.storage_schema.as_ref().clone())?;
                if let Ok(physical) = state.create_physical_expr(predicate, &df_schema) {
                    source = source.with_predicate(physical);
                }
            }
            let group_count = partitions.min(files.len());
            let mut groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); group_count];
            for (index, file) in files.into_iter().enumerate() {
                groups[index % group_count].push(file);
            }
            let config =
                FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), Arc::new(source))
                    .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
                    .with_projection_indices(Some(source_columns.clone()))?
                    .with_expr_adapter(Some(Arc::new(crate::stored::StoredColumnsAdapterFactory)))
                    .build();
            inputs.push(DataSourceExec::from_data_source(config));
        }

        // The open transaction's rows follow the committed ones; they belong
        // to no chunk yet, and the filters above the scan still apply to them.
        let memtable: Vec<_> = chunks
            .iter()
            .flat_map(|c| c.memtable.iter().cloned())
            .chain(uncommitted)
            .collect();
        if !memtable.is_empty() {
            let group_count = partitions.min(memtable.len());
            let mut groups = vec![Vec::new(); group_count];
            for (index, batch) in memtable.into_iter().enumerate() {
                groups[index % group_count].push(batch);
            }
            inputs.push(MemorySourceConfig::try_new_exec(
                &groups,
                self.storage_schema.clone(),
                Some(source_columns.clone()),
            )?);
        }

        let mut input: Arc<dyn ExecutionPlan> = if inputs.is_empty() {
            Arc::new(EmptyExec::new(source_schema))
        } else {
            UnionExec::try_new(inputs)?
        };
        if !delete_sets.is_empty() {
            let rowid_position = source_columns
                .iter()
                .position(|c| *c == rowid_index)
                .unwrap_or_default();
            input = Arc::new(DeletedRowsFilterExec::new(
                input,
                delete_sets,
                rowid_position,
                output_columns.len(),
                projected_schema,
            ));
        }
        let chunk_names: Vec<String> = match &self.table.hypertable {
            Some(h) => chunks
                .iter()
                .map(|c| c.chunk.table_name(h.hypertable_id))
                .collect(),
            None => Vec::new(),
        };
        Ok(Arc::new(ChunkScanExec::new(
            self.table.name.clone(),
            self.table.hypertable.is_some(),
            chunk_names,
            total_chunks,
            input,
        )))
    }
}

/// Drops deleted rows (by their row id column, at `rowid_position`), then
/// keeps the first `keep_columns` columns.
#[derive(Debug)]
pub struct DeletedRowsFilterExec {
    input: Arc<dyn ExecutionPlan>,
    deleted: Arc<Vec<DeleteSet>>,
    rowid_position: usize,
    keep_columns: usize,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl DeletedRowsFilterExec {
    fn new(
        input: Arc<dyn ExecutionPlan>,
        deleted: Vec<DeleteSet>,
        rowid_position: usize,
        keep_columns: usize,
        schema: SchemaRef,
    ) -> Self {
        // The output is the input's first `keep_columns` columns: orderings
        // over them (a sort pushed below this node) still hold.
        let keep: Vec<usize> = (0..keep_columns).collect();
        let eq_properties = datafusion::physical_expr::projection::ProjectionMapping::from_indices(
            &keep,
            &input.schema(),
        )
        .map(|mapping| {
            input
                .properties()
                .eq_properties
                .project(&mapping, schema.clone())
        })
        .unwrap_or_else(|_| EquivalenceProperties::new(schema.clone()));
        let properties = input
            .properties()
            .as_ref()
            .clone()
            .with_eq_properties(eq_properties);
        DeletedRowsFilterExec {
            input,
            deleted: Arc::new(deleted),
            rowid_position,
            keep_columns,
            schema,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for DeletedRowsFilterExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let deleted: usize = self.deleted.iter().map(DeleteSet::len).sum();
        write!(f, "DeletedRowsFilterExec: deleted_rows={deleted}")
    }
}

impl ExecutionPlan for DeletedRowsFilterExec {
    fn name(&self) -> &str {
        "DeletedRowsFilterExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    // The scan below already reads in as many partitions as pay off.
    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    /// At most the input's rows: an estimate, since some may be deleted.
    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        let mut stats = Statistics::new_unknown(&self.schema);
        if let Some(input) = input_stats.first() {
            stats.num_rows = input.num_rows.to_inexact();
        }
        Ok(Arc::new(stats))
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.pop().ok_or_else(|| {
            datafusion::error::DataFusionError::Internal(
                "DeletedRowsFilterExec needs one child".to_owned(),
            )
        })?;
        // The new input may have other partitions (optimizers split file
        // scans): the properties are derived from it again, never kept.
        Ok(Arc::new(DeletedRowsFilterExec::new(
            input,
            self.deleted.as_ref().clone(),
            self.rowid_position,
            self.keep_columns,
            self.schema.clone(),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let deleted = self.deleted.clone();
        let rowid_position = self.rowid_position;
        let keep: Vec<usize> = (0..self.keep_columns).collect();
        let schema = self.schema.clone();
        let output_schema = schema.clone();
        let stream = input.map(move |batch| {
            let batch = batch?;
            let sets: Vec<&DeleteSet> = deleted.iter().collect();
            let live = DeleteSet::filter_batch(&sets, &batch, rowid_position)
                .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
            let projected = live.project(&keep)?;
            let options = RecordBatchOptions::new().with_row_count(Some(projected.num_rows()));
            Ok::<RecordBatch, datafusion::error::DataFusionError>(
                RecordBatch::try_new_with_options(
                    output_schema.clone(),
                    projected.columns().to_vec(),
                    &options,
                )?,
            )
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

/// Names, for EXPLAIN, the chunks a scan reads after chunk exclusion; rows pass through.
#[derive(Debug)]
pub struct ChunkScanExec {
    table: String,
    is_hypertable: bool,
    chunk_names: Vec<String>,
    total_chunks: usize,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl ChunkScanExec {
    fn new(
        table: String,
        is_hypertable: bool,
        chunk_names: Vec<String>,
        total_chunks: usize,
        input: Arc<dyn ExecutionPlan>,
    ) -> Self {
        let properties = input.properties().clone();
        ChunkScanExec {
            table,
            is_hypertable,
            chunk_names,
            total_chunks,
            input,
            properties,
        }
    }
}

impl DisplayAs for ChunkScanExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_hypertable {
            write!(
                f,
                "ChunkScanExec: table={}, chunks={}/{} [{}]",
                self.table,
                self.chunk_names.len(),
                self.total_chunks,
                self.chunk_names.join(", ")
            )
        } else {
            write!(f, "ChunkScanExec: table={}", self.table)
        }
    }
}

impl ExecutionPlan for ChunkScanExec {
    fn name(&self) -> &str {
        "ChunkScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    // The scan below already reads in as many partitions as pay off.
    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    /// The rows of the scan below, which this node only names.
    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        Ok(input_stats
            .first()
            .cloned()
            .unwrap_or_else(|| Arc::new(Statistics::new_unknown(&self.input.schema()))))
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.pop().ok_or_else(|| {
            datafusion::error::DataFusionError::Internal("ChunkScanExec needs one child".to_owned())
        })?;
        Ok(Arc::new(ChunkScanExec::new(
            self.table.clone(),
            self.is_hypertable,
            self.chunk_names.clone(),
            self.total_chunks,
            input,
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::{col, lit};

    fn ts(micros: i64) -> Expr {
        lit(ScalarValue::TimestampMicrosecond(
            Some(micros),
            Some("+00:00".into()),
        ))
    }

    #[test]
    fn filters_narrow_the_time_range() {
        let range = time_range(&[col("time").gt_eq(ts(10)), col("time").lt(ts(20))], "time");
        assert_eq!(
            range,
            TimeRange {
                lower: 10,
                upper: 19
            }
        );
        let range = time_range(
            &[ts(5).lt(col("time")).and(col("other").eq(lit(1)))],
            "time",
        );
        assert_eq!(
            range,
            TimeRange {
                lower: 6,
                upper: i64::MAX
            }
        );
        let range = time_range(&[col("time").between(ts(1), ts(9))], "time");
        assert_eq!(range, TimeRange { lower: 1, upper: 9 });
        // An OR cannot narrow; neither can a predicate on another column.
        let range = time_range(&[col("time").gt(ts(5)).or(col("time").lt(ts(2)))], "time");
        assert_eq!(range, TimeRange::ALL);
        assert!(range.overlaps_chunk(0, 10));
        assert!(
            !TimeRange {
                lower: 10,
                upper: 19
            }
            .overlaps_chunk(0, 10)
        );
        assert!(
            TimeRange {
                lower: 10,
                upper: 19
            }
            .overlaps_chunk(10, 20)
        );
    }
}
