//! What a session keeps of the statements it runs again: the parsed
//! statements of a query string, and the plans of table-free queries.
//!
//! Drivers, pools and monitors send the same trivial statements over and
//! over: `SELECT 1` to check a connection, pgbench's scripts, a health
//! probe. DataFusion plans every statement from scratch (SQL to logical
//! plan, analyzer and optimizer rules, physical planning and its
//! optimizer), which takes far longer than running such a statement. The
//! session keeps the physical plan of a query that can mean nothing else on
//! its next run, and runs it again:
//!
//! - it reads no table (a table's plan holds the snapshot of its rows that
//!   planning took, see `tempora_query::provider`), not even a catalog
//!   table;
//! - it has no parameters, and every function it calls is immutable (a
//!   stable function such as `now()` or `current_setting()` is folded into
//!   the plan as a constant by planning);
//! - its physical operators keep no state between runs: projections,
//!   filters, limits, and VALUES lists and single rows held in memory;
//! - the catalog and the session's settings are what they were when it was
//!   planned.
//!
//! Anything else is planned on every run. Parsing depends on the text
//! alone, so the statements of any query string that parsed are kept
//! ([`ParsedQueries`]).

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::sql::sqlparser::ast::Statement;

use tempora_catalog::CatalogState;

/// Kept plans a session holds, at most this many.
const PLANS_KEPT: usize = 64;

/// A planned query kept for its next run.
pub(crate) struct KeptPlan {
    pub(crate) plan: Arc<dyn ExecutionPlan>,
    /// The result columns with PostgreSQL's names.
    pub(crate) schema: SchemaRef,
    /// The context the plan runs in, as planning made it.
    pub(crate) task: Arc<TaskContext>,
    /// The catalog the plan was made against (not kept alive by it).
    catalog: Weak<CatalogState>,
    /// The session's settings generation then (see `SessionInfo::generation`).
    settings: u64,
}

/// The session's kept plans, by statement.
#[derive(Default)]
pub(crate) struct PlanCache {
    plans: HashMap<Statement, Arc<KeptPlan>>,
}

impl PlanCache {
    /// The kept plan of `statement`, if it is still valid for `catalog`
    /// and the settings `generation`.
    pub(crate) fn get(
        &self,
        statement: &Statement,
        catalog: &Arc<CatalogState>,
        settings: u64,
    ) -> Option<Arc<KeptPlan>> {
        self.plans
            .get(statement)
            .filter(|kept| {
                std::ptr::eq(kept.catalog.as_ptr(), Arc::as_ptr(catalog))
                    && kept.settings == settings
            })
            .cloned()
    }

    /// Keeps the physical `plan` of `statement` if its operators qualify
    /// (see the module comment); the caller has checked its logical plan
    /// with [`may_keep`].
    pub(crate) fn keep(
        &mut self,
        statement: &Statement,
        plan: &Arc<dyn ExecutionPlan>,
        schema: &SchemaRef,
        task: &Arc<TaskContext>,
        catalog: &Arc<CatalogState>,
        settings: u64,
    ) {
        if !physical_is_kept(plan.as_ref()) {
            return;
        }
        if self.plans.len() >= PLANS_KEPT {
            self.plans.clear();
        }
        self.plans.insert(
            statement.clone(),
            Arc::new(KeptPlan {
                plan: plan.clone(),
                schema: schema.clone(),
                task: task.clone(),
                catalog: Arc::downgrade(catalog),
                settings,
            }),
        );
    }

    pub(crate) fn clear(&mut self) {
        self.plans.clear();
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.plans.len()
    }
}

/// Query strings a session parsed, with their statements.
#[derive(Default)]
pub(crate) struct ParsedQueries {
    parsed: HashMap<String, Arc<[Statement]>>,
}

/// Query strings longer than this are parsed on every run (a bulk INSERT
/// is seldom sent twice).
const PARSED_TEXT_KEPT: usize = 4096;

impl ParsedQueries {
    /// The statements of `sql`, parsed once.
    pub(crate) fn parse(&mut self, sql: &str) -> crate::Result<Arc<[Statement]>> {
        if let Some(statements) = self.parsed.get(sql) {
            return Ok(statements.clone());
        }
        let statements: Arc<[Statement]> = crate::parse(sql)?.into();
        if sql.len() <= PARSED_TEXT_KEPT {
            if self.parsed.len() >= PLANS_KEPT {
                self.parsed.clear();
            }
            self.parsed.insert(sql.to_owned(), statements.clone());
        }
        Ok(statements)
    }
}

/// Whether a logical plan, before optimization, may be kept: it reads no
/// table and calls only immutable functions, subqueries included, and has
/// no parameter.
pub(crate) fn may_keep(plan: &LogicalPlan) -> bool {
    let mut refused = false;
    let walked = plan.apply_with_subqueries(|node| {
        refused = matches!(
            node,
            LogicalPlan::TableScan(_)
                | LogicalPlan::Extension(_)
                | LogicalPlan::RecursiveQuery(_)
                | LogicalPlan::Dml(_)
                | LogicalPlan::Ddl(_)
                | LogicalPlan::Copy(_)
                | LogicalPlan::Statement(_)
                | LogicalPlan::Explain(_)
                | LogicalPlan::Analyze(_)
                | LogicalPlan::DescribeTable(_)
        );
        if !refused {
            node.apply_expressions(|expr| {
                refused = expr.exists(|e| Ok(may_vary(e)))?;
                Ok(stop_if(refused))
            })?;
        }
        Ok(stop_if(refused))
    });
    walked.is_ok() && !refused
}

/// Whether an expression may mean something else on another run.
fn may_vary(expr: &Expr) -> bool {
    match expr {
        Expr::ScalarFunction(function) => {
            function.func.signature().volatility != Volatility::Immutable
        }
        Expr::Placeholder(_) | Expr::OuterReferenceColumn(..) => true,
        _ => false,
    }
}

fn stop_if(stop: bool) -> TreeNodeRecursion {
    if stop {
        TreeNodeRecursion::Stop
    } else {
        TreeNodeRecursion::Continue
    }
}

/// Whether a physical plan is made only of operators that keep no state
/// between runs.
fn physical_is_kept(plan: &dyn ExecutionPlan) -> bool {
    let stateless = match plan.name() {
        "ProjectionExec"
        | "FilterExec"
        | "PlaceholderRowExec"
        | "EmptyExec"
        | "CoalesceBatchesExec"
        | "GlobalLimitExec"
        | "LocalLimitExec" => true,
        "DataSourceExec" => plan
            .downcast_ref::<DataSourceExec>()
            .is_some_and(|source| source.data_source().is::<MemorySourceConfig>()),
        _ => false,
    };
    stateless
        && plan
            .children()
            .into_iter()
            .all(|child| physical_is_kept(child.as_ref()))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::display::array_value_to_string;
    use futures::TryStreamExt;

    use crate::{Engine, Output, Session};

    /// Runs one statement and returns its first column as text.
    async fn column(session: &mut Session, sql: &str) -> Vec<String> {
        let mut outputs = session.execute_sql(sql).await;
        assert_eq!(outputs.len(), 1, "{sql}");
        let batches = match outputs.pop().unwrap().unwrap() {
            Output::Stream { stream, .. } => stream.try_collect::<Vec<_>>().await.unwrap(),
            Output::Batches { batches, .. } => batches,
            other => panic!("{sql}: {other:?}"),
        };
        batches
            .iter()
            .flat_map(|batch| {
                (0..batch.num_rows())
                    .map(|row| array_value_to_string(batch.column(0), row).unwrap())
            })
            .collect()
    }

    async fn run(session: &mut Session, sql: &str) {
        for output in session.execute_sql(sql).await {
            output.unwrap();
        }
    }

    fn open() -> (tempfile::TempDir, Session) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path(), Default::default()).unwrap();
        let session = engine.session();
        (dir, session)
    }

    #[tokio::test]
    async fn table_free_queries_are_kept_and_run_again() {
        let (_dir, mut session) = open();
        let statement = crate::parse("SELECT 1").unwrap().remove(0);
        let metrics = |session: &Session| {
            let catalog = session.engine().store().catalog().snapshot();
            let kept = session
                .plans
                .get(&statement, &catalog, session.info.generation());
            kept.unwrap().plan.metrics().unwrap().iter().count()
        };
        assert_eq!(column(&mut session, "SELECT 1").await, ["1"]);
        let first = metrics(&session);
        for _ in 0..3 {
            assert_eq!(column(&mut session, "SELECT 1").await, ["1"]);
        }
        assert_eq!(session.plans.len(), 1);
        // Runs of the kept plan leave it as it was.
        assert_eq!(metrics(&session), first);
        let functions = "SELECT upper('ab') || 'c', 2 > 1 LIMIT 3";
        for _ in 0..3 {
            assert_eq!(column(&mut session, functions).await, ["ABc"]);
        }
        assert_eq!(session.plans.len(), 2);
    }

    #[tokio::test]
    async fn queries_that_may_differ_on_the_next_run_are_planned_again() {
        let (_dir, mut session) = open();
        run(&mut session, "CREATE TABLE t (x int)").await;
        run(&mut session, "INSERT INTO t VALUES (1)").await;
        let reads = "SELECT (SELECT max(x) FROM t) + 0";
        assert_eq!(column(&mut session, reads).await, ["1"]);
        run(&mut session, "INSERT INTO t VALUES (7)").await;
        assert_eq!(column(&mut session, reads).await, ["7"]);
        // A stable function is folded into its plan; a sort and a
        // repartition keep state.
        for sql in [
            reads,
            "SELECT now()",
            "SELECT current_setting('application_name')",
            "SELECT x FROM (VALUES (2), (1)) v(x) ORDER BY x",
            "SELECT x * 2 FROM (VALUES (1), (2), (3)) v(x) WHERE x > 1",
            "SELECT count(*) FROM t",
        ] {
            column(&mut session, sql).await;
            column(&mut session, sql).await;
        }
        assert_eq!(session.plans.len(), 0);
        run(&mut session, "SET application_name = 'a'").await;
        assert_eq!(
            column(&mut session, "SELECT current_setting('application_name')").await,
            ["a"]
        );
    }

    #[tokio::test]
    async fn a_changed_catalog_or_setting_retires_a_kept_plan() {
        let (_dir, mut session) = open();
        let statement = crate::parse("SELECT 1").unwrap().remove(0);
        column(&mut session, "SELECT 1").await;
        let valid = |session: &Session| {
            let catalog = session.engine().store().catalog().snapshot();
            session
                .plans
                .get(&statement, &catalog, session.info.generation())
                .is_some()
        };
        assert!(valid(&session));
        run(&mut session, "SET application_name = 'b'").await;
        assert!(!valid(&session));
        column(&mut session, "SELECT 1").await;
        assert!(valid(&session));
        run(&mut session, "CREATE TABLE u (x int)").await;
        assert!(!valid(&session));
        column(&mut session, "SELECT 1").await;
        assert!(valid(&session));
        run(&mut session, "DISCARD PLANS").await;
        assert!(!valid(&session));
    }
}
