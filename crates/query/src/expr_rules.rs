//! The traversal the expression-rewriting analyzer rules share (casts,
//! integer arithmetic, interval comparisons), and how their functions read
//! a text argument.

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{ColumnarValue, Expr, LogicalPlan};

/// The schema a node's expressions see: its one input's, or an empty one
/// for a leaf. None for joins and unions, whose expressions see several
/// inputs; the rules leave those.
pub(crate) fn input_schema(node: &LogicalPlan) -> Option<DFSchema> {
    match node.inputs().as_slice() {
        [input] => Some(input.schema().as_ref().clone()),
        [] => Some(DFSchema::empty()),
        _ => None,
    }
}

/// Applies `rewrite` bottom-up to every expression of `node`, keeping the
/// names of its output columns (a rewritten `x::int` is still named so).
pub(crate) fn rewrite_node(
    node: LogicalPlan,
    schema: &DFSchema,
    rewrite: &impl Fn(Expr, &DFSchema) -> Result<Transformed<Expr>>,
) -> Result<Transformed<LogicalPlan>> {
    let names = NamePreserver::new(&node);
    node.map_expressions(|expr| {
        let name = names.save(&expr);
        Ok(expr
            .transform_up(|e| rewrite(e, schema))?
            .update_data(|e| name.restore(e)))
    })
}

/// Applies `rewrite` to the expressions of every node of `plan` that
/// [`input_schema`] gives a schema, subqueries included.
pub(crate) fn rewrite_plan(
    plan: LogicalPlan,
    rewrite: impl Fn(Expr, &DFSchema) -> Result<Transformed<Expr>>,
) -> Result<LogicalPlan> {
    Ok(plan
        .transform_up_with_subqueries(|node| match input_schema(&node) {
            Some(schema) => rewrite_node(node, &schema, &rewrite),
            None => Ok(Transformed::no(node)),
        })?
        .data)
}

/// Argument `value` of a function call over `rows` rows, as a text array.
pub(crate) fn text_argument(value: &ColumnarValue, rows: usize) -> Result<ArrayRef> {
    let array = value.to_array(rows)?;
    Ok(datafusion::arrow::compute::cast(&array, &DataType::Utf8)?)
}
