//! Segment columns stored in another type than the table's: intervals, as
//! 16 bytes each (see `tempora_storage::segment::interval_from_stored`).
//!
//! The Parquet scan asks this adapter to rewrite the expressions it
//! evaluates against a file (its projection and pushed-down predicates):
//! each reference to a stored column becomes its conversion back. Other
//! differences between file and table are left to DataFusion's default
//! adapter.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, IntervalUnit, Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr_adapter::{
    DefaultPhysicalExprAdapterFactory, PhysicalExprAdapter, PhysicalExprAdapterFactory,
};

const INTERVAL: DataType = DataType::Interval(IntervalUnit::MonthDayNano);

/// Makes the adapter for each segment file a scan opens.
#[derive(Debug)]
pub(crate) struct StoredColumnsAdapterFactory;

impl PhysicalExprAdapterFactory for StoredColumnsAdapterFactory {
    fn create(
        &self,
        logical_file_schema: SchemaRef,
        physical_file_schema: SchemaRef,
    ) -> Result<Arc<dyn PhysicalExprAdapter>> {
        let stored = |field: &Field| {
            field.data_type() == &INTERVAL
                && physical_file_schema
                    .field_with_name(field.name())
                    .is_ok_and(|f| matches!(f.data_type(), DataType::FixedSizeBinary(16)))
        };
        let intervals: Vec<String> = logical_file_schema
            .fields()
            .iter()
            .filter(|f| stored(f))
            .map(|f| f.name().clone())
            .collect();
        if intervals.is_empty() {
            return DefaultPhysicalExprAdapterFactory
                .create(logical_file_schema, physical_file_schema);
        }
        // The default adapter sees the stored columns as already of the
        // table's type (so adds no cast); this one then converts them.
        let seen: Vec<Field> = physical_file_schema
            .fields()
            .iter()
            .map(|f| match intervals.contains(f.name()) {
                true => f.as_ref().clone().with_data_type(INTERVAL),
                false => f.as_ref().clone(),
            })
            .collect();
        let inner = DefaultPhysicalExprAdapterFactory.create(
            logical_file_schema,
            Arc::new(Schema::new_with_metadata(
                seen,
                physical_file_schema.metadata().clone(),
            )),
        )?;
        Ok(Arc::new(StoredColumnsAdapter { inner, intervals }))
    }
}

#[derive(Debug)]
struct StoredColumnsAdapter {
    inner: Arc<dyn PhysicalExprAdapter>,
    intervals: Vec<String>,
}

impl PhysicalExprAdapter for StoredColumnsAdapter {
    fn rewrite(&self, expr: Arc<dyn PhysicalExpr>) -> Result<Arc<dyn PhysicalExpr>> {
        self.inner
            .rewrite(expr)?
            .transform_up(|expr| {
                let stored = expr
                    .downcast_ref::<Column>()
                    .is_some_and(|c| self.intervals.iter().any(|name| name == c.name()));
                Ok(match stored {
                    true => Transformed::yes(Arc::new(IntervalFromStored { stored: expr })),
                    false => Transformed::no(expr),
                })
            })
            .data()
    }
}

/// An interval column read as its stored bytes, converted back.
#[derive(Debug, Eq)]
struct IntervalFromStored {
    stored: Arc<dyn PhysicalExpr>,
}

impl PartialEq for IntervalFromStored {
    fn eq(&self, other: &Self) -> bool {
        self.stored.eq(&other.stored)
    }
}

impl std::hash::Hash for IntervalFromStored {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.stored.hash(state);
    }
}

impl fmt::Display for IntervalFromStored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.stored)
    }
}

impl PhysicalExpr for IntervalFromStored {
    fn data_type(&self, _input_schema: &Schema) -> Result<DataType> {
        Ok(INTERVAL)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.stored.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let convert = |array: &dyn Array| -> Result<_> {
            let bytes = array.as_fixed_size_binary_opt().ok_or_else(|| {
                DataFusionError::Internal(format!(
                    "a stored interval column reads as {}",
                    array.data_type()
                ))
            })?;
            Ok(tempora_storage::segment::interval_from_stored(bytes)?)
        };
        Ok(match self.stored.evaluate(batch)? {
            ColumnarValue::Array(array) => ColumnarValue::Array(Arc::new(convert(&array)?)),
            ColumnarValue::Scalar(scalar) => ColumnarValue::Scalar(ScalarValue::try_from_array(
                &convert(&scalar.to_array()?)?,
                0,
            )?),
        })
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.stored]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let stored = children.into_iter().next().ok_or_else(|| {
            DataFusionError::Internal("a stored interval has one child".to_owned())
        })?;
        Ok(Arc::new(IntervalFromStored { stored }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.stored.fmt_sql(f)
    }
}
