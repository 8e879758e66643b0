//! The query layer: DataFusion configured to behave like PostgreSQL with
//! TimescaleDB, reading tempora's storage.
//!
//! ```text
//! SQL text ─(sql layer)─> DataFusion LogicalPlan ─optimizer─> ExecutionPlan
//!                                   │                              │
//!                 catalog: DatabaseCatalog (public, timescaledb_information, pg_catalog)
//!                 functions: time_bucket, first, last, histogram
//!                 types: PgTypePlanner (::timestamptz, ::jsonb, ::numeric ...)
//!                                                    TemporaTable::scan ─ chunk exclusion
//!                                                      └ ChunkScanExec ─ Parquet segments + memtables
//! ```
//!
//! This layer reads; writes go through the sql layer to `tempora_storage::Store`.

pub mod aggregates;
mod arith;
pub mod casts;
mod catalog_table;
mod column_size;
mod correlated;
pub mod error;
mod expr_rules;
pub mod functions;
pub mod information_schema;
mod intervals;
pub mod json;
mod json_build;
pub mod oids;
pub mod pg_catalog;
pub mod provider;
mod random_uuid;
pub mod schemas;
pub mod session_info;
mod stored;
pub mod system_functions;
pub mod temporal;
mod text_patterns;
mod time_zones;
mod to_char;
pub mod types;
pub mod views;
pub mod visibility;

use std::sync::Arc;

use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::session_info::SessionInfo;
use crate::visibility::SessionReads;

/// The name of the one database, as PostgreSQL's default.
pub const DATABASE_NAME: &str = "postgres";

/// The PostgreSQL version tempora answers as (`server_version`, `version()`).
pub const SERVER_VERSION: &str = "15.0";

/// One runtime for every session, so caches (Parquet footers and page
/// indexes of segment files, which never change) serve all of them.
static RUNTIME: std::sync::LazyLock<Arc<RuntimeEnv>> =
    std::sync::LazyLock::new(|| Arc::new(RuntimeEnv::default()));

/// A DataFusion context over a session's reads of the store, with tempora's
/// functions, types and schemas.
pub fn session_context(reads: Arc<SessionReads>, session: Arc<SessionInfo>) -> SessionContext {
    let mut config = SessionConfig::new()
        .with_default_catalog_and_schema(DATABASE_NAME, tempora_catalog::DEFAULT_SCHEMA)
        .with_create_default_catalog_and_schema(false)
        .with_information_schema(false);
    let options = config.options_mut();
    options.execution.time_zone = Some(tempora_types::UTC_ZONE.to_owned());
    // PostgreSQL identifiers are case-folded by the parser; DataFusion does the same.
    options.sql_parser.enable_ident_normalization = true;
    // `'...'::text` values and string columns stay Utf8, matching stored columns.
    options.sql_parser.map_string_types_to_utf8view = false;
    // `0.005` is numeric in PostgreSQL, not double precision.
    options.sql_parser.parse_float_as_decimal = true;
    options.execution.parquet.schema_force_view_types = false;
    options.execution.parquet.pushdown_filters = true;
    let mut state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(RUNTIME.clone())
        .with_default_features()
        .with_type_planner(Arc::new(types::PgTypePlanner))
        .with_optimizer_rule(Arc::new(correlated::RunCorrelatedSubqueries))
        .build();
    state.add_analyzer_rule(Arc::new(casts::PostgresCasts));
    state.add_analyzer_rule(Arc::new(arith::IntegerOverflow));
    state.add_analyzer_rule(Arc::new(correlated::RunUndecorrelatableSubqueries));
    state.add_analyzer_rule(Arc::new(intervals::IntervalComparisons));
    // Registering a planner only appends it to the session's list; it cannot fail.
    for planner in [
        Arc::new(json::JsonOperators) as Arc<dyn datafusion::logical_expr::planner::ExprPlanner>,
        Arc::new(temporal::TemporalOperators),
    ] {
        let _ = datafusion::execution::FunctionRegistry::register_expr_planner(&mut state, planner);
    }
    let context = SessionContext::new_with_state(state);
    let store = reads.store().clone();
    context.register_catalog(
        DATABASE_NAME,
        Arc::new(schemas::DatabaseCatalog::new(reads, session.clone())),
    );
    context.register_udf(ScalarUDF::from(functions::TimeBucket::default()));
    // PostgreSQL's templates, in place of DataFusion's chrono patterns.
    context.register_udf(to_char::to_char());
    context.register_udf(random_uuid::gen_random_uuid());
    context.register_udf(column_size::pg_column_size());
    context.register_udf(text_patterns::similar_to_escape());
    context.register_udf(time_zones::timezone());
    // PostgreSQL's name of DataFusion's signum (a float; PostgreSQL's
    // sign of a numeric is a numeric of the same value).
    context.register_udf(
        datafusion::functions::math::signum()
            .as_ref()
            .clone()
            .with_aliases(["sign"]),
    );
    for function in json::functions().into_iter().chain(json_build::functions()) {
        context.register_udf(function);
    }
    for aggregate in json_build::aggregates() {
        context.register_udaf(aggregate);
    }
    context.register_udaf(AggregateUDF::from(aggregates::FirstLast::first()));
    context.register_udaf(AggregateUDF::from(aggregates::FirstLast::last()));
    context.register_udaf(AggregateUDF::from(aggregates::Histogram::default()));
    context.register_udaf(AggregateUDF::from(aggregates::PgSum::default()));
    // PostgreSQL's other names of DataFusion's aggregates.
    context.register_udaf(
        datafusion::functions_aggregate::variance::var_samp_udaf()
            .as_ref()
            .clone()
            .with_aliases(["variance"]),
    );
    context.register_udaf(
        datafusion::functions_aggregate::bool_and_or::bool_and_udaf()
            .as_ref()
            .clone()
            .with_aliases(["every"]),
    );
    for function in system_functions::all(store, session) {
        context.register_udf(function);
    }
    context
}
