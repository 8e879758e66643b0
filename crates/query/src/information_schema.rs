//! `information_schema`: the SQL-standard views of tables, columns, schemas,
//! views, constraints and sequences, as PostgreSQL 15 spells them (Grafana
//! and most ORMs list tables and columns here).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::Result;

use tempora_catalog::{CatalogState, DEFAULT_SCHEMA};
use tempora_storage::Store;
use tempora_types::PgType;

use crate::catalog_table::{Cell, Columns, row, table};
use crate::oids;
use crate::pg_catalog::{ConstraintRef, NAMESPACES, default_expression, table_constraints};

pub const INFORMATION_SCHEMA: &str = "information_schema";
const OWNER: &str = "postgres";

/// The views of this schema, with their OIDs.
const RELATIONS: &[(&str, u32)] = &[
    ("tables", 13_201),
    ("columns", 13_202),
    ("schemata", 13_203),
    ("views", 13_204),
    ("table_constraints", 13_205),
    ("key_column_usage", 13_206),
    ("sequences", 13_207),
    ("routines", 13_208),
    ("character_sets", 13_209),
];

/// `(oid, name, namespace)` of every view here, for `pg_class`.
pub fn relations() -> Vec<(u32, &'static str, u32)> {
    RELATIONS
        .iter()
        .map(|(name, oid)| (*oid, *name, oids::INFORMATION_SCHEMA_NAMESPACE))
        .collect()
}

pub fn relation_name(oid: u32) -> Option<&'static str> {
    RELATIONS.iter().find(|r| r.1 == oid).map(|r| r.0)
}

/// The OID of `information_schema.name`.
pub fn relation_oid(qualified: &str) -> Option<u32> {
    let name = qualified.strip_prefix("information_schema.")?;
    RELATIONS.iter().find(|r| r.0 == name).map(|r| r.1)
}

#[derive(Debug)]
pub struct InformationSchema {
    store: Arc<Store>,
}

impl InformationSchema {
    pub fn new(store: Arc<Store>) -> Self {
        InformationSchema { store }
    }
}

#[async_trait]
impl SchemaProvider for InformationSchema {
    fn table_names(&self) -> Vec<String> {
        RELATIONS.iter().map(|r| r.0.to_owned()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let state = self.store.catalog().snapshot();
        let (columns, rows) = match name {
            "tables" => (TABLES, tables(&state)),
            "columns" => (COLUMNS, columns(&state)),
            "schemata" => (SCHEMATA, schemata()),
            "views" => (VIEWS, views(&state)),
            "table_constraints" => (TABLE_CONSTRAINTS, table_constraint_rows(&state)),
            "key_column_usage" => (KEY_COLUMN_USAGE, key_column_usage(&state)),
            "sequences" => (SEQUENCES, sequences(&state)),
            "routines" => (ROUTINES, Vec::new()),
            "character_sets" => (
                CHARACTER_SETS,
                vec![row![
                    Cell::Null,
                    Cell::Null,
                    "UTF8",
                    "UCS",
                    "UTF8",
                    crate::DATABASE_NAME,
                    "pg_catalog",
                    "C"
                ]],
            ),
            _ => return Ok(None),
        };
        table(columns, rows).map(Some)
    }

    fn table_exist(&self, name: &str) -> bool {
        RELATIONS.iter().any(|r| r.0 == name)
    }
}

use PgType::{Int4, Text};

const TABLES: Columns = &[
    ("table_catalog", Text),
    ("table_schema", Text),
    ("table_name", Text),
    ("table_type", Text),
    ("self_referencing_column_name", Text),
    ("reference_generation", Text),
    ("user_defined_type_catalog", Text),
    ("user_defined_type_schema", Text),
    ("user_defined_type_name", Text),
    ("is_insertable_into", Text),
    ("is_typed", Text),
    ("commit_action", Text),
];

fn tables(state: &CatalogState) -> Vec<Vec<Cell>> {
    let table_row = |name: &str, kind: &str, insertable: &str| {
        row![
            crate::DATABASE_NAME,
            DEFAULT_SCHEMA,
            name,
            kind,
            Cell::Null,
            Cell::Null,
            Cell::Null,
            Cell::Null,
            Cell::Null,
            insertable,
            "NO",
            Cell::Null
        ]
    };
    let mut rows: Vec<Vec<Cell>> = state
        .tables
        .values()
        .map(|t| table_row(&t.name, "BASE TABLE", "YES"))
        .collect();
    rows.extend(
        state
            .views
            .values()
            .map(|v| table_row(&v.name, "VIEW", "NO")),
    );
    rows
}

const COLUMNS: Columns = &[
    ("table_catalog", Text),
    ("table_schema", Text),
    ("table_name", Text),
    ("column_name", Text),
    ("ordinal_position", Int4),
    ("column_default", Text),
    ("is_nullable", Text),
    ("data_type", Text),
    ("character_maximum_length", Int4),
    ("character_octet_length", Int4),
    ("numeric_precision", Int4),
    ("numeric_precision_radix", Int4),
    ("numeric_scale", Int4),
    ("datetime_precision", Int4),
    ("interval_type", Text),
    ("interval_precision", Int4),
    ("character_set_catalog", Text),
    ("character_set_schema", Text),
    ("character_set_name", Text),
    ("collation_catalog", Text),
    ("collation_schema", Text),
    ("collation_name", Text),
    ("domain_catalog", Text),
    ("domain_schema", Text),
    ("domain_name", Text),
    ("udt_catalog", Text),
    ("udt_schema", Text),
    ("udt_name", Text),
    ("is_identity", Text),
    ("identity_generation", Text),
    ("is_generated", Text),
    ("generation_expression", Text),
    ("is_updatable", Text),
];

/// `information_schema.columns.data_type`: the standard's type names.
fn standard_type_name(pg_type: PgType) -> String {
    match pg_type {
        PgType::Numeric { .. } => "numeric".to_owned(),
        PgType::Varchar { .. } => "character varying".to_owned(),
        t if t.element().is_some() => "ARRAY".to_owned(),
        PgType::Json | PgType::Jsonb | PgType::Uuid | PgType::Bytea => pg_type.to_string(),
        PgType::Name | PgType::Oid | PgType::Char => "USER-DEFINED".to_owned(),
        other => other.to_string(),
    }
}

fn numeric_facts(pg_type: PgType) -> (Option<i32>, Option<i32>, Option<i32>) {
    match pg_type {
        PgType::Int2 => (Some(16), Some(2), Some(0)),
        PgType::Int4 => (Some(32), Some(2), Some(0)),
        PgType::Int8 => (Some(64), Some(2), Some(0)),
        PgType::Float4 => (Some(24), Some(2), None),
        PgType::Float8 => (Some(53), Some(2), None),
        PgType::Numeric {
            precision: Some(p),
            scale,
        } => (Some(p as i32), Some(10), Some(scale.unwrap_or(0) as i32)),
        PgType::Numeric { .. } => (None, Some(10), None),
        _ => (None, None, None),
    }
}

fn columns(state: &CatalogState) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for table in state.tables.values() {
        for (index, column) in table.columns.iter().enumerate() {
            let (precision, radix, scale) = numeric_facts(column.pg_type);
            let max_chars = match column.pg_type {
                PgType::Varchar { max_chars } => max_chars.map(|n| n as i32),
                _ => None,
            };
            let datetime_precision = matches!(
                column.pg_type,
                PgType::Timestamp | PgType::Timestamptz | PgType::Date | PgType::Interval
            )
            .then_some(if column.pg_type == PgType::Date { 0 } else { 6 });
            let identity = column.identity_always;
            rows.push(row![
                crate::DATABASE_NAME,
                DEFAULT_SCHEMA,
                table.name.clone(),
                column.name.clone(),
                (index + 1) as i32,
                if identity {
                    None
                } else {
                    default_expression(column)
                },
                if column.not_null { "NO" } else { "YES" },
                standard_type_name(column.pg_type),
                max_chars,
                max_chars
                    .map(|n| n * 4)
                    .or(matches!(column.pg_type, PgType::Text).then_some(1_073_741_824)),
                precision,
                radix,
                scale,
                datetime_precision,
                Cell::Null,
                Cell::Null,
                Cell::Null,
                Cell::Null,
                Cell::Null,
                Cell::Null,
                Cell::Null,
                Cell::Null,
                Cell::Null,
                Cell::Null,
                Cell::Null,
                crate::DATABASE_NAME,
                "pg_catalog",
                column.pg_type.typname(),
                if identity { "YES" } else { "NO" },
                identity.then_some("ALWAYS"),
                "NEVER",
                Cell::Null,
                "YES"
            ]);
        }
    }
    for view in state.views.values() {
        for (index, column) in view.columns.iter().enumerate() {
            let mut cells = vec![Cell::Null; COLUMNS.len()];
            cells[0] = crate::DATABASE_NAME.into();
            cells[1] = DEFAULT_SCHEMA.into();
            cells[2] = view.name.clone().into();
            cells[3] = column.clone().into();
            cells[4] = Cell::Int(index as i64 + 1);
            let pg_type = view
                .column_types
                .get(index)
                .copied()
                .unwrap_or(PgType::Text);
            cells[6] = "YES".into();
            cells[7] = standard_type_name(pg_type).into();
            cells[25] = crate::DATABASE_NAME.into();
            cells[26] = "pg_catalog".into();
            cells[27] = pg_type.typname().into();
            cells[28] = "NO".into();
            cells[30] = "NEVER".into();
            cells[32] = "NO".into();
            rows.push(cells);
        }
    }
    rows
}

const SCHEMATA: Columns = &[
    ("catalog_name", Text),
    ("schema_name", Text),
    ("schema_owner", Text),
    ("default_character_set_catalog", Text),
    ("default_character_set_schema", Text),
    ("default_character_set_name", Text),
    ("sql_path", Text),
];

fn schemata() -> Vec<Vec<Cell>> {
    NAMESPACES
        .iter()
        .map(|(_, name)| {
            row![
                crate::DATABASE_NAME,
                *name,
                OWNER,
                Cell::Null,
                Cell::Null,
                Cell::Null,
                Cell::Null
            ]
        })
        .collect()
}

const VIEWS: Columns = &[
    ("table_catalog", Text),
    ("table_schema", Text),
    ("table_name", Text),
    ("view_definition", Text),
    ("check_option", Text),
    ("is_updatable", Text),
    ("is_insertable_into", Text),
    ("is_trigger_updatable", Text),
    ("is_trigger_deletable", Text),
    ("is_trigger_insertable_into", Text),
];

fn views(state: &CatalogState) -> Vec<Vec<Cell>> {
    state
        .views
        .values()
        .map(|v| {
            row![
                crate::DATABASE_NAME,
                DEFAULT_SCHEMA,
                v.name.clone(),
                v.query.clone(),
                "NONE",
                "NO",
                "NO",
                "NO",
                "NO",
                "NO"
            ]
        })
        .collect()
}

const TABLE_CONSTRAINTS: Columns = &[
    ("constraint_catalog", Text),
    ("constraint_schema", Text),
    ("constraint_name", Text),
    ("table_catalog", Text),
    ("table_schema", Text),
    ("table_name", Text),
    ("constraint_type", Text),
    ("is_deferrable", Text),
    ("initially_deferred", Text),
    ("enforced", Text),
    ("nulls_distinct", Text),
];

fn table_constraint_rows(state: &CatalogState) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for table in state.tables.values() {
        for constraint in table_constraints(table) {
            let (name, kind) = match constraint {
                ConstraintRef::Key(_, index) if index.primary => {
                    (index.name.clone(), "PRIMARY KEY")
                }
                ConstraintRef::Key(_, index) => (index.name.clone(), "UNIQUE"),
                ConstraintRef::Check(check) => (check.name.clone(), "CHECK"),
            };
            rows.push(row![
                crate::DATABASE_NAME,
                DEFAULT_SCHEMA,
                name,
                crate::DATABASE_NAME,
                DEFAULT_SCHEMA,
                table.name.clone(),
                kind,
                "NO",
                "NO",
                "YES",
                (kind == "UNIQUE").then_some("YES")
            ]);
        }
    }
    rows
}

const KEY_COLUMN_USAGE: Columns = &[
    ("constraint_catalog", Text),
    ("constraint_schema", Text),
    ("constraint_name", Text),
    ("table_catalog", Text),
    ("table_schema", Text),
    ("table_name", Text),
    ("column_name", Text),
    ("ordinal_position", Int4),
    ("position_in_unique_constraint", Int4),
];

fn key_column_usage(state: &CatalogState) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for table in state.tables.values() {
        for constraint in table_constraints(table) {
            let ConstraintRef::Key(_, index) = constraint else {
                continue;
            };
            for (position, column) in index.columns.iter().enumerate() {
                rows.push(row![
                    crate::DATABASE_NAME,
                    DEFAULT_SCHEMA,
                    index.name.clone(),
                    crate::DATABASE_NAME,
                    DEFAULT_SCHEMA,
                    table.name.clone(),
                    column.clone(),
                    (position + 1) as i32,
                    Cell::Null
                ]);
            }
        }
    }
    rows
}

const SEQUENCES: Columns = &[
    ("sequence_catalog", Text),
    ("sequence_schema", Text),
    ("sequence_name", Text),
    ("data_type", Text),
    ("numeric_precision", Int4),
    ("numeric_precision_radix", Int4),
    ("numeric_scale", Int4),
    ("start_value", Text),
    ("minimum_value", Text),
    ("maximum_value", Text),
    ("increment", Text),
    ("cycle_option", Text),
];

fn sequences(state: &CatalogState) -> Vec<Vec<Cell>> {
    state
        .sequences
        .values()
        .map(|s| {
            row![
                crate::DATABASE_NAME,
                DEFAULT_SCHEMA,
                s.name.clone(),
                "bigint",
                64i32,
                2i32,
                0i32,
                s.start_value.to_string(),
                s.min_value.to_string(),
                s.max_value.to_string(),
                s.increment.to_string(),
                "NO"
            ]
        })
        .collect()
}

const ROUTINES: Columns = &[
    ("specific_catalog", Text),
    ("specific_schema", Text),
    ("specific_name", Text),
    ("routine_catalog", Text),
    ("routine_schema", Text),
    ("routine_name", Text),
    ("routine_type", Text),
    ("data_type", Text),
];

const CHARACTER_SETS: Columns = &[
    ("character_set_catalog", Text),
    ("character_set_schema", Text),
    ("character_set_name", Text),
    ("character_repertoire", Text),
    ("form_of_use", Text),
    ("default_collate_catalog", Text),
    ("default_collate_schema", Text),
    ("default_collate_name", Text),
];
