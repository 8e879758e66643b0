//! `pg_catalog`: the system catalogs clients read before and while they
//! work (psql's `\d`, SQLAlchemy's reflection, JDBC's metadata, Grafana's
//! table lists), built from tempora's catalog each time a query names one.
//!
//! Every table has PostgreSQL 15's column names and types; the rows describe
//! tempora's own objects (tables, hypertables and their chunks, indexes,
//! constraints, sequences, views, the TimescaleDB functions) and the
//! built-in types, schemas and access methods clients look up. Catalogs of
//! features tempora does not have (policies, publications, triggers, rules,
//! extended statistics) exist and are empty, so the queries that join them
//! plan and run. OIDs follow [`crate::oids`].

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::Result;

use tempora_catalog::{CHUNK_SCHEMA, CatalogState, ColumnDef, DEFAULT_SCHEMA, TableDef};
use tempora_storage::Store;
use tempora_types::PgType;

use crate::catalog_table::{Cell, Columns, row, table};
use crate::oids::{self, PG_CATALOG_NAMESPACE as PG_CATALOG, SUPERUSER_ROLE as OWNER};
use crate::session_info::SessionInfo;

pub const PG_CATALOG_NAME: &str = "pg_catalog";
/// Catalog `meta` key set to 1 once `CREATE EXTENSION timescaledb` ran.
pub const META_TIMESCALEDB_INSTALLED: &str = "extension_timescaledb";
/// The version of the TimescaleDB API tempora implements.
pub const TIMESCALEDB_VERSION: &str = "2.17.2";
const OWNER_NAME: &str = "postgres";

use PgType::{
    Bool, Char, CharArray, Float4, Int2, Int2Vector, Int4, Int8, Name, Oid, OidArray, OidVector,
    Text, TextArray, Timestamptz,
};

/// The catalog relations tempora provides: name, OID, `relkind`, schema.
/// The OIDs of PostgreSQL's own catalogs are PostgreSQL's.
const CATALOG_RELATIONS: &[(&str, u32, char, u32)] = &[
    ("pg_aggregate", 2600, 'r', PG_CATALOG),
    ("pg_am", 2601, 'r', PG_CATALOG),
    ("pg_attrdef", 2604, 'r', PG_CATALOG),
    ("pg_attribute", 1249, 'r', PG_CATALOG),
    ("pg_auth_members", 1261, 'r', PG_CATALOG),
    ("pg_class", 1259, 'r', PG_CATALOG),
    ("pg_collation", 3456, 'r', PG_CATALOG),
    ("pg_constraint", 2606, 'r', PG_CATALOG),
    ("pg_database", 1262, 'r', PG_CATALOG),
    ("pg_depend", 2608, 'r', PG_CATALOG),
    ("pg_description", 2609, 'r', PG_CATALOG),
    ("pg_enum", 3501, 'r', PG_CATALOG),
    ("pg_extension", 3079, 'r', PG_CATALOG),
    ("pg_index", 2610, 'r', PG_CATALOG),
    ("pg_inherits", 2611, 'r', PG_CATALOG),
    ("pg_language", 2612, 'r', PG_CATALOG),
    ("pg_namespace", 2615, 'r', PG_CATALOG),
    ("pg_opclass", 2616, 'r', PG_CATALOG),
    ("pg_policy", 3256, 'r', PG_CATALOG),
    ("pg_proc", 1255, 'r', PG_CATALOG),
    ("pg_publication", 6104, 'r', PG_CATALOG),
    ("pg_publication_namespace", 6237, 'r', PG_CATALOG),
    ("pg_publication_rel", 6106, 'r', PG_CATALOG),
    ("pg_range", 3541, 'r', PG_CATALOG),
    ("pg_rewrite", 2618, 'r', PG_CATALOG),
    ("pg_sequence", 2224, 'r', PG_CATALOG),
    ("pg_shdescription", 2396, 'r', PG_CATALOG),
    ("pg_statistic_ext", 3381, 'r', PG_CATALOG),
    ("pg_tablespace", 1213, 'r', PG_CATALOG),
    ("pg_trigger", 2620, 'r', PG_CATALOG),
    ("pg_type", 1247, 'r', PG_CATALOG),
    ("pg_available_extensions", 12_001, 'v', PG_CATALOG),
    ("pg_indexes", 12_002, 'v', PG_CATALOG),
    ("pg_locks", 12_003, 'v', PG_CATALOG),
    ("pg_matviews", 12_004, 'v', PG_CATALOG),
    ("pg_roles", 12_005, 'v', PG_CATALOG),
    ("pg_sequences", 12_006, 'v', PG_CATALOG),
    ("pg_settings", 12_007, 'v', PG_CATALOG),
    ("pg_stat_activity", 12_008, 'v', PG_CATALOG),
    ("pg_tables", 12_009, 'v', PG_CATALOG),
    ("pg_user", 12_010, 'v', PG_CATALOG),
    ("pg_views", 12_011, 'v', PG_CATALOG),
    ("pg_timezone_names", 12_012, 'v', PG_CATALOG),
];

/// The name of the catalog relation with this OID.
pub fn catalog_relation_name(oid: u32) -> Option<&'static str> {
    CATALOG_RELATIONS
        .iter()
        .find(|r| r.1 == oid)
        .map(|r| r.0)
        .or_else(|| crate::information_schema::relation_name(oid))
}

/// The OID of the catalog relation `name` (`pg_class`, or
/// `information_schema.tables` with its schema).
pub fn catalog_relation_oid(name: &str) -> Option<u32> {
    CATALOG_RELATIONS
        .iter()
        .find(|r| r.0 == name)
        .map(|r| r.1)
        .or_else(|| crate::information_schema::relation_oid(name))
}

/// A built-in type: OID, name, length, by value, type, category, element,
/// array type, alignment, storage, collation.
struct BuiltinType {
    oid: u32,
    name: &'static str,
    len: i16,
    by_value: bool,
    kind: char,
    category: char,
    element: u32,
    array: u32,
    align: char,
    storage: char,
    collation: u32,
}

#[allow(clippy::too_many_arguments)]
const fn base(
    oid: u32,
    name: &'static str,
    len: i16,
    by_value: bool,
    category: char,
    array: u32,
    align: char,
    storage: char,
) -> BuiltinType {
    BuiltinType {
        oid,
        name,
        len,
        by_value,
        kind: 'b',
        category,
        element: 0,
        array,
        align,
        storage,
        collation: 0,
    }
}

const fn collatable(mut t: BuiltinType) -> BuiltinType {
    t.collation = oids::DEFAULT_COLLATION;
    t
}

const fn array(oid: u32, name: &'static str, element: u32, align: char) -> BuiltinType {
    BuiltinType {
        oid,
        name,
        len: -1,
        by_value: false,
        kind: 'b',
        category: 'A',
        element,
        array: 0,
        align,
        storage: 'x',
        collation: 0,
    }
}

const fn pseudo(oid: u32, name: &'static str, len: i16) -> BuiltinType {
    BuiltinType {
        oid,
        name,
        len,
        by_value: false,
        kind: 'p',
        category: 'P',
        element: 0,
        array: 0,
        align: 'i',
        storage: 'p',
        collation: 0,
    }
}

const BUILTIN_TYPES: &[BuiltinType] = &[
    base(16, "bool", 1, true, 'B', 1000, 'c', 'p'),
    base(17, "bytea", -1, false, 'U', 1001, 'i', 'x'),
    base(18, "char", 1, true, 'Z', 1002, 'c', 'p'),
    BuiltinType {
        element: 18,
        collation: oids::C_COLLATION,
        ..base(19, "name", 64, false, 'S', 1003, 'c', 'p')
    },
    base(20, "int8", 8, true, 'N', 1016, 'd', 'p'),
    base(21, "int2", 2, true, 'N', 1005, 's', 'p'),
    BuiltinType {
        element: 21,
        category: 'A',
        ..base(22, "int2vector", -1, false, 'A', 1006, 'i', 'p')
    },
    base(23, "int4", 4, true, 'N', 1007, 'i', 'p'),
    base(24, "regproc", 4, true, 'N', 1008, 'i', 'p'),
    collatable(base(25, "text", -1, false, 'S', 1009, 'i', 'x')),
    base(26, "oid", 4, true, 'N', 1028, 'i', 'p'),
    base(28, "xid", 4, true, 'U', 1011, 'i', 'p'),
    BuiltinType {
        element: 26,
        ..base(30, "oidvector", -1, false, 'A', 1013, 'i', 'p')
    },
    base(114, "json", -1, false, 'U', 199, 'i', 'x'),
    array(199, "_json", 114, 'i'),
    base(194, "pg_node_tree", -1, false, 'Z', 0, 'i', 'x'),
    base(700, "float4", 4, true, 'N', 1021, 'i', 'p'),
    base(701, "float8", 8, true, 'N', 1022, 'd', 'p'),
    pseudo(705, "unknown", -2),
    base(1033, "aclitem", 12, false, 'U', 1034, 'i', 'p'),
    array(1000, "_bool", 16, 'i'),
    array(1001, "_bytea", 17, 'i'),
    array(1002, "_char", 18, 'i'),
    array(1003, "_name", 19, 'i'),
    array(1005, "_int2", 21, 'i'),
    array(1006, "_int2vector", 22, 'i'),
    array(1007, "_int4", 23, 'i'),
    array(1008, "_regproc", 24, 'i'),
    array(1009, "_text", 25, 'i'),
    array(1011, "_xid", 28, 'i'),
    array(1013, "_oidvector", 30, 'i'),
    array(1014, "_bpchar", 1042, 'i'),
    array(1015, "_varchar", 1043, 'i'),
    array(1016, "_int8", 20, 'd'),
    array(1021, "_float4", 700, 'i'),
    array(1022, "_float8", 701, 'd'),
    array(1028, "_oid", 26, 'i'),
    array(1034, "_aclitem", 1033, 'i'),
    collatable(base(1042, "bpchar", -1, false, 'S', 1014, 'i', 'x')),
    collatable(base(1043, "varchar", -1, false, 'S', 1015, 'i', 'x')),
    base(1082, "date", 4, true, 'D', 1182, 'i', 'p'),
    base(1083, "time", 8, true, 'D', 1183, 'd', 'p'),
    base(1114, "timestamp", 8, true, 'D', 1115, 'd', 'p'),
    array(1115, "_timestamp", 1114, 'd'),
    array(1182, "_date", 1082, 'i'),
    array(1183, "_time", 1083, 'd'),
    base(1184, "timestamptz", 8, true, 'D', 1185, 'd', 'p'),
    array(1185, "_timestamptz", 1184, 'd'),
    base(1186, "interval", 16, false, 'T', 1187, 'd', 'p'),
    array(1187, "_interval", 1186, 'd'),
    array(1231, "_numeric", 1700, 'i'),
    base(1266, "timetz", 12, false, 'D', 1270, 'd', 'p'),
    array(1270, "_timetz", 1266, 'd'),
    base(1700, "numeric", -1, false, 'N', 1231, 'i', 'm'),
    base(2205, "regclass", 4, true, 'N', 2210, 'i', 'p'),
    base(2206, "regtype", 4, true, 'N', 2211, 'i', 'p'),
    array(2210, "_regclass", 2205, 'i'),
    array(2211, "_regtype", 2206, 'i'),
    pseudo(2249, "record", -1),
    pseudo(2275, "cstring", -2),
    pseudo(2276, "any", 4),
    pseudo(2277, "anyarray", -1),
    pseudo(2278, "void", 4),
    pseudo(2279, "trigger", 4),
    pseudo(2283, "anyelement", 4),
    pseudo(2287, "_record", -1),
    base(2950, "uuid", 16, false, 'U', 2951, 'c', 'p'),
    array(2951, "_uuid", 2950, 'i'),
    base(3802, "jsonb", -1, false, 'U', 3807, 'i', 'x'),
    array(3807, "_jsonb", 3802, 'i'),
    base(4089, "regnamespace", 4, true, 'N', 4090, 'i', 'p'),
    array(4090, "_regnamespace", 4089, 'i'),
];

/// The name of the built-in type with this OID (`pg_type.typname`).
pub fn type_name(oid: u32) -> Option<&'static str> {
    BUILTIN_TYPES.iter().find(|t| t.oid == oid).map(|t| t.name)
}

/// The OID of the built-in type named `name` (`typname`, or a SQL name).
pub fn type_oid(name: &str) -> Option<u32> {
    let name = name.trim().trim_start_matches("pg_catalog.");
    if let Some(t) = BUILTIN_TYPES.iter().find(|t| t.name == name) {
        return Some(t.oid);
    }
    PgType::parse_name(name).map(|t| t.oid())
}

/// `format_type(oid, typmod)`: the SQL name of a type.
pub fn format_type(oid: u32, typmod: Option<i32>) -> Option<String> {
    let modifier = typmod.filter(|m| *m >= 0);
    Some(match oid {
        1043 => match modifier {
            Some(m) => format!("character varying({})", m - 4),
            None => "character varying".to_owned(),
        },
        1042 => match modifier {
            Some(m) => format!("character({})", m - 4),
            None => "bpchar".to_owned(),
        },
        1700 => match modifier {
            Some(m) => format!("numeric({},{})", (m - 4) >> 16, (m - 4) & 0xffff),
            None => "numeric".to_owned(),
        },
        16 => "boolean".to_owned(),
        18 => "\"char\"".to_owned(),
        20 => "bigint".to_owned(),
        21 => "smallint".to_owned(),
        23 => "integer".to_owned(),
        700 => "real".to_owned(),
        701 => "double precision".to_owned(),
        1083 => "time without time zone".to_owned(),
        1114 => "timestamp without time zone".to_owned(),
        1184 => "timestamp with time zone".to_owned(),
        1266 => "time with time zone".to_owned(),
        other => {
            let t = BUILTIN_TYPES.iter().find(|t| t.oid == other)?;
            if t.category == 'A' && t.element != 0 && !t.name.ends_with("vector") {
                format!("{}[]", format_type(t.element, None)?)
            } else {
                t.name.to_owned()
            }
        }
    })
}

fn column_collation(pg_type: PgType) -> u32 {
    match pg_type {
        PgType::Text | PgType::Varchar { .. } => oids::DEFAULT_COLLATION,
        PgType::Name => oids::C_COLLATION,
        _ => 0,
    }
}

/// `pg_get_expr` of a column default: PostgreSQL's form of the default,
/// with sequences named the way `nextval('t_id_seq'::regclass)` shows them.
pub fn default_expression(column: &ColumnDef) -> Option<String> {
    let sql = column.default_sql.as_ref()?;
    let lower = sql.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("nextval('")
        && let Some(name) = rest.strip_suffix("')")
    {
        return Some(format!("nextval('{name}'::regclass)"));
    }
    Some(sql.clone())
}

/// The `pg_catalog` schema.
#[derive(Debug)]
pub struct PgCatalogSchema {
    store: Arc<Store>,
    session: Arc<SessionInfo>,
}

impl PgCatalogSchema {
    pub fn new(store: Arc<Store>, session: Arc<SessionInfo>) -> Self {
        PgCatalogSchema { store, session }
    }

    fn build(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let state = self.store.catalog().snapshot();
        let state = state.as_ref();
        let (columns, rows): (Columns, Vec<Vec<Cell>>) = match name {
            "pg_namespace" => (NAMESPACE, namespaces()),
            "pg_class" => (CLASS, classes(state, &self.store)),
            "pg_attribute" => (ATTRIBUTE, attributes(state)),
            "pg_type" => (TYPE, types()),
            "pg_index" => (INDEX, indexes(state)),
            "pg_constraint" => (CONSTRAINT, constraints(state)),
            "pg_attrdef" => (ATTRDEF, attribute_defaults(state)),
            "pg_am" => (AM, access_methods()),
            "pg_proc" => (PROC, functions()),
            "pg_database" => (DATABASE, databases()),
            "pg_roles" => (ROLES, roles(state)),
            "pg_user" => (USER, users(state)),
            "pg_settings" => (SETTINGS, settings(&self.session)),
            "pg_extension" => (EXTENSION, extensions(state)),
            "pg_available_extensions" => (AVAILABLE_EXTENSIONS, available_extensions(state)),
            "pg_inherits" => (INHERITS, inherits(state)),
            "pg_collation" => (COLLATION, collations()),
            "pg_tablespace" => (TABLESPACE, tablespaces()),
            "pg_sequence" => (SEQUENCE, sequences(state)),
            "pg_sequences" => (SEQUENCES, sequences_view(state)),
            "pg_depend" => (DEPEND, dependencies(state)),
            "pg_tables" => (TABLES, tables_view(state)),
            "pg_views" => (VIEWS, views_view(state)),
            "pg_indexes" => (INDEXES, indexes_view(state)),
            "pg_language" => (LANGUAGE, languages()),
            "pg_description" => (DESCRIPTION, descriptions(state)),
            "pg_shdescription" => (SHDESCRIPTION, Vec::new()),
            "pg_trigger" => (TRIGGER, Vec::new()),
            "pg_rewrite" => (REWRITE, Vec::new()),
            "pg_policy" => (POLICY, Vec::new()),
            "pg_statistic_ext" => (STATISTIC_EXT, Vec::new()),
            "pg_publication" => (PUBLICATION, Vec::new()),
            "pg_publication_rel" => (PUBLICATION_REL, Vec::new()),
            "pg_publication_namespace" => (PUBLICATION_NAMESPACE, Vec::new()),
            "pg_enum" => (ENUM, Vec::new()),
            "pg_range" => (RANGE, Vec::new()),
            "pg_opclass" => (OPCLASS, Vec::new()),
            "pg_aggregate" => (AGGREGATE, Vec::new()),
            "pg_auth_members" => (AUTH_MEMBERS, Vec::new()),
            "pg_matviews" => (MATVIEWS, Vec::new()),
            "pg_locks" => (LOCKS, Vec::new()),
            "pg_stat_activity" => (STAT_ACTIVITY, activity(&self.session)),
            "pg_timezone_names" => (TIMEZONE_NAMES, vec![row!["UTC", "UTC", 0i64, false]]),
            _ => return Ok(None),
        };
        table(columns, rows).map(Some)
    }
}

#[async_trait]
impl SchemaProvider for PgCatalogSchema {
    fn table_names(&self) -> Vec<String> {
        CATALOG_RELATIONS.iter().map(|r| r.0.to_owned()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        self.build(name)
    }

    fn table_exist(&self, name: &str) -> bool {
        CATALOG_RELATIONS.iter().any(|r| r.0 == name)
    }
}

const NAMESPACE: Columns = &[
    ("oid", Oid),
    ("nspname", Name),
    ("nspowner", Oid),
    ("nspacl", TextArray),
];

/// The schemas, with their OIDs and names.
pub const NAMESPACES: &[(u32, &str)] = &[
    (oids::PG_CATALOG_NAMESPACE, "pg_catalog"),
    (oids::PG_TOAST_NAMESPACE, "pg_toast"),
    (oids::PUBLIC_NAMESPACE, DEFAULT_SCHEMA),
    (oids::INFORMATION_SCHEMA_NAMESPACE, "information_schema"),
    (
        oids::TIMESCALEDB_INFORMATION_NAMESPACE,
        "timescaledb_information",
    ),
    (oids::CHUNK_NAMESPACE, CHUNK_SCHEMA),
];

/// The name of the schema with this OID.
pub fn namespace_name(oid: u32) -> Option<&'static str> {
    NAMESPACES.iter().find(|n| n.0 == oid).map(|n| n.1)
}

fn namespaces() -> Vec<Vec<Cell>> {
    NAMESPACES
        .iter()
        .map(|(oid, name)| row![*oid, *name, OWNER, Cell::Null])
        .collect()
}

const CLASS: Columns = &[
    ("oid", Oid),
    ("relname", Name),
    ("relnamespace", Oid),
    ("reltype", Oid),
    ("reloftype", Oid),
    ("relowner", Oid),
    ("relam", Oid),
    ("relfilenode", Oid),
    ("reltablespace", Oid),
    ("relpages", Int4),
    ("reltuples", Float4),
    ("relallvisible", Int4),
    ("reltoastrelid", Oid),
    ("relhasindex", Bool),
    ("relisshared", Bool),
    ("relpersistence", Char),
    ("relkind", Char),
    ("relnatts", Int2),
    ("relchecks", Int2),
    ("relhasrules", Bool),
    ("relhastriggers", Bool),
    ("relhassubclass", Bool),
    ("relrowsecurity", Bool),
    ("relforcerowsecurity", Bool),
    ("relispopulated", Bool),
    ("relreplident", Char),
    ("relispartition", Bool),
    ("relrewrite", Oid),
    ("relacl", TextArray),
    ("reloptions", TextArray),
    ("relpartbound", Text),
];

/// One `pg_class` row.
#[allow(clippy::too_many_arguments)]
fn class_row(
    oid: u32,
    name: &str,
    namespace: u32,
    am: u32,
    tuples: f32,
    has_index: bool,
    kind: char,
    columns: usize,
    checks: usize,
    has_subclass: bool,
) -> Vec<Cell> {
    row![
        oid,
        name,
        namespace,
        0u32,
        0u32,
        OWNER,
        am,
        oid,
        0u32,
        0i32,
        tuples,
        0i32,
        0u32,
        has_index,
        false,
        'p',
        kind,
        columns as i16,
        checks as i16,
        false,
        false,
        has_subclass,
        false,
        false,
        true,
        'd',
        false,
        0u32,
        Cell::Null,
        Cell::Null,
        Cell::Null
    ]
}

fn classes(state: &CatalogState, store: &Store) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for table in state.tables.values() {
        let tuples = store.row_count(table.id) as f32;
        rows.push(class_row(
            oids::table(table.id),
            &table.name,
            oids::PUBLIC_NAMESPACE,
            oids::HEAP_AM,
            tuples,
            !table.indexes.is_empty(),
            'r',
            table.columns.len(),
            table.checks.len(),
            table.hypertable.is_some() && !state.chunks_of(table.id).is_empty(),
        ));
        for (position, index) in table.indexes.iter().enumerate() {
            let am = if index.method == "gin" {
                oids::GIN_AM
            } else {
                oids::BTREE_AM
            };
            let keys = index.columns.len().max(index.expressions.len());
            rows.push(class_row(
                oids::index(table.id, position),
                &index.name,
                oids::PUBLIC_NAMESPACE,
                am,
                tuples,
                false,
                'i',
                keys,
                0,
                false,
            ));
        }
        if let Some(h) = &table.hypertable {
            for chunk in state.chunks_of(table.id) {
                rows.push(class_row(
                    oids::chunk(chunk.id),
                    &chunk.table_name(h.hypertable_id),
                    oids::CHUNK_NAMESPACE,
                    oids::HEAP_AM,
                    chunk.row_count() as f32,
                    false,
                    'r',
                    table.columns.len(),
                    0,
                    false,
                ));
            }
        }
    }
    for view in state.views.values() {
        rows.push(class_row(
            oids::named("view", &view.name),
            &view.name,
            oids::PUBLIC_NAMESPACE,
            0,
            -1.0,
            false,
            'v',
            view.columns.len(),
            0,
            false,
        ));
    }
    for sequence in state.sequences.values() {
        rows.push(class_row(
            oids::named("sequence", &sequence.name),
            &sequence.name,
            oids::PUBLIC_NAMESPACE,
            0,
            1.0,
            false,
            'S',
            3,
            0,
            false,
        ));
    }
    for (name, oid, kind, namespace) in CATALOG_RELATIONS {
        rows.push(class_row(
            *oid, name, *namespace, 0, -1.0, false, *kind, 0, 0, false,
        ));
    }
    rows.extend(crate::information_schema::relations().into_iter().map(
        |(oid, name, namespace)| class_row(oid, name, namespace, 0, -1.0, false, 'v', 0, 0, false),
    ));
    rows
}

const ATTRIBUTE: Columns = &[
    ("attrelid", Oid),
    ("attname", Name),
    ("atttypid", Oid),
    ("attstattarget", Int4),
    ("attlen", Int2),
    ("attnum", Int2),
    ("attndims", Int4),
    ("attcacheoff", Int4),
    ("atttypmod", Int4),
    ("attbyval", Bool),
    ("attalign", Char),
    ("attstorage", Char),
    ("attcompression", Char),
    ("attnotnull", Bool),
    ("atthasdef", Bool),
    ("atthasmissing", Bool),
    ("attidentity", Char),
    ("attgenerated", Char),
    ("attisdropped", Bool),
    ("attislocal", Bool),
    ("attinhcount", Int4),
    ("attcollation", Oid),
    ("attacl", TextArray),
    ("attoptions", TextArray),
    ("attfdwoptions", TextArray),
];

fn attribute_row(
    relation: u32,
    number: usize,
    name: &str,
    pg_type: PgType,
    not_null: bool,
    has_default: bool,
    identity: &str,
) -> Vec<Cell> {
    let builtin = BUILTIN_TYPES.iter().find(|t| t.oid == pg_type.oid());
    let by_value = builtin.is_some_and(|t| t.by_value);
    let align = builtin.map_or('i', |t| t.align);
    let storage = builtin.map_or('x', |t| t.storage);
    let dims = i32::from(pg_type.element().is_some() && !pg_type.is_vector());
    row![
        relation,
        name,
        pg_type.oid(),
        -1i32,
        pg_type.type_size(),
        number as i16,
        dims,
        -1i32,
        pg_type.type_modifier(),
        by_value,
        align,
        storage,
        "",
        not_null,
        has_default,
        false,
        identity,
        "",
        false,
        true,
        0i32,
        column_collation(pg_type),
        Cell::Null,
        Cell::Null,
        Cell::Null
    ]
}

fn table_attributes(relation: u32, table: &TableDef, rows: &mut Vec<Vec<Cell>>) {
    for (index, column) in table.columns.iter().enumerate() {
        let identity = if column.identity_always { "a" } else { "" };
        rows.push(attribute_row(
            relation,
            index + 1,
            &column.name,
            column.pg_type,
            column.not_null,
            column.default_sql.is_some(),
            identity,
        ));
    }
}

fn attributes(state: &CatalogState) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for table in state.tables.values() {
        table_attributes(oids::table(table.id), table, &mut rows);
        for (position, index) in table.indexes.iter().enumerate() {
            let relation = oids::index(table.id, position);
            for (number, column) in index.columns.iter().enumerate() {
                let pg_type = table
                    .columns
                    .iter()
                    .find(|c| &c.name == column)
                    .map_or(PgType::Text, |c| c.pg_type);
                rows.push(attribute_row(
                    relation,
                    number + 1,
                    column,
                    pg_type,
                    false,
                    false,
                    "",
                ));
            }
            for (number, _) in index.expressions.iter().enumerate() {
                let name = if number == 0 {
                    "expr".to_owned()
                } else {
                    format!("expr{number}")
                };
                rows.push(attribute_row(
                    relation,
                    number + 1,
                    &name,
                    PgType::Text,
                    false,
                    false,
                    "",
                ));
            }
        }
        for chunk in state.chunks_of(table.id) {
            if table.hypertable.is_some() {
                table_attributes(oids::chunk(chunk.id), table, &mut rows);
            }
        }
    }
    for view in state.views.values() {
        let relation = oids::named("view", &view.name);
        for (index, column) in view.columns.iter().enumerate() {
            let pg_type = view
                .column_types
                .get(index)
                .copied()
                .unwrap_or(PgType::Text);
            rows.push(attribute_row(
                relation,
                index + 1,
                column,
                pg_type,
                false,
                false,
                "",
            ));
        }
    }
    rows
}

const TYPE: Columns = &[
    ("oid", Oid),
    ("typname", Name),
    ("typnamespace", Oid),
    ("typowner", Oid),
    ("typlen", Int2),
    ("typbyval", Bool),
    ("typtype", Char),
    ("typcategory", Char),
    ("typispreferred", Bool),
    ("typisdefined", Bool),
    ("typdelim", Char),
    ("typrelid", Oid),
    ("typsubscript", Text),
    ("typelem", Oid),
    ("typarray", Oid),
    ("typinput", Text),
    ("typoutput", Text),
    ("typreceive", Text),
    ("typsend", Text),
    ("typmodin", Text),
    ("typmodout", Text),
    ("typanalyze", Text),
    ("typalign", Char),
    ("typstorage", Char),
    ("typnotnull", Bool),
    ("typbasetype", Oid),
    ("typtypmod", Int4),
    ("typndims", Int4),
    ("typcollation", Oid),
    ("typdefaultbin", Text),
    ("typdefault", Text),
    ("typacl", TextArray),
];

fn types() -> Vec<Vec<Cell>> {
    BUILTIN_TYPES
        .iter()
        .map(|t| {
            let (input, output, receive, send) = if t.category == 'A' && t.name.starts_with('_') {
                ("array_in", "array_out", "array_recv", "array_send")
            } else {
                ("", "", "", "")
            };
            let io = |suffix: &str, generic: &str| {
                if generic.is_empty() {
                    format!("{}{suffix}", t.name)
                } else {
                    generic.to_owned()
                }
            };
            row![
                t.oid,
                t.name,
                PG_CATALOG,
                OWNER,
                t.len,
                t.by_value,
                t.kind,
                t.category,
                matches!(t.oid, 16 | 25 | 701 | 1184 | 1186 | 26),
                true,
                ",",
                0u32,
                "-",
                t.element,
                t.array,
                io("in", input),
                io("out", output),
                io("recv", receive),
                io("send", send),
                "-",
                "-",
                "-",
                t.align,
                t.storage,
                false,
                0u32,
                -1i32,
                0i32,
                t.collation,
                Cell::Null,
                Cell::Null,
                Cell::Null
            ]
        })
        .collect()
}

const INDEX: Columns = &[
    ("indexrelid", Oid),
    ("indrelid", Oid),
    ("indnatts", Int2),
    ("indnkeyatts", Int2),
    ("indisunique", Bool),
    ("indnullsnotdistinct", Bool),
    ("indisprimary", Bool),
    ("indisexclusion", Bool),
    ("indimmediate", Bool),
    ("indisclustered", Bool),
    ("indisvalid", Bool),
    ("indcheckxmin", Bool),
    ("indisready", Bool),
    ("indislive", Bool),
    ("indisreplident", Bool),
    ("indkey", Int2Vector),
    ("indcollation", OidVector),
    ("indclass", OidVector),
    ("indoption", Int2Vector),
    ("indexprs", Text),
    ("indpred", Text),
];

fn indexes(state: &CatalogState) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for table in state.tables.values() {
        for (position, index) in table.indexes.iter().enumerate() {
            let keys: Vec<i64> = if index.expressions.is_empty() {
                index
                    .columns
                    .iter()
                    .map(|c| table.column_index(c).map_or(0, |i| i as i64 + 1))
                    .collect()
            } else {
                vec![0; index.expressions.len()]
            };
            // PostgreSQL's INDOPTION_DESC (1) with NULLS FIRST (2), DESC's default.
            let options: Vec<i64> = (0..keys.len())
                .map(|i| {
                    if index.descending.get(i).copied().unwrap_or(false) {
                        3
                    } else {
                        0
                    }
                })
                .collect();
            let collations: Vec<i64> = keys
                .iter()
                .map(|k| {
                    let column = (*k as usize)
                        .checked_sub(1)
                        .and_then(|i| table.columns.get(i));
                    column.map_or(0, |c| column_collation(c.pg_type) as i64)
                })
                .collect();
            let expressions = (!index.expressions.is_empty()).then(|| index.expressions.join(", "));
            rows.push(row![
                oids::index(table.id, position),
                oids::table(table.id),
                keys.len() as i16,
                keys.len() as i16,
                index.unique,
                false,
                index.primary,
                false,
                true,
                false,
                true,
                false,
                true,
                true,
                false,
                Cell::Ints(keys.clone()),
                Cell::Ints(collations),
                Cell::Ints(vec![0; keys.len()]),
                Cell::Ints(options),
                expressions,
                Cell::Null
            ]);
        }
    }
    rows
}

const CONSTRAINT: Columns = &[
    ("oid", Oid),
    ("conname", Name),
    ("connamespace", Oid),
    ("contype", Char),
    ("condeferrable", Bool),
    ("condeferred", Bool),
    ("convalidated", Bool),
    ("conrelid", Oid),
    ("contypid", Oid),
    ("conindid", Oid),
    ("conparentid", Oid),
    ("confrelid", Oid),
    ("confupdtype", Char),
    ("confdeltype", Char),
    ("confmatchtype", Char),
    ("conislocal", Bool),
    ("coninhcount", Int4),
    ("connoinherit", Bool),
    ("conkey", PgType::Int2Array),
    ("confkey", PgType::Int2Array),
    ("conpfeqop", OidArray),
    ("conppeqop", OidArray),
    ("conffeqop", OidArray),
    ("confdelsetcols", PgType::Int2Array),
    ("conexclop", OidArray),
    ("conbin", Text),
];

/// A table's constraints in `pg_constraint` order: its key constraints
/// (with their index positions), then its checks.
pub enum ConstraintRef<'a> {
    Key(usize, &'a tempora_catalog::IndexDef),
    Check(&'a tempora_catalog::CheckDef),
}

pub fn table_constraints(table: &TableDef) -> Vec<ConstraintRef<'_>> {
    let keys = table
        .indexes
        .iter()
        .enumerate()
        .filter(|(_, i)| i.constraint)
        .map(|(p, i)| ConstraintRef::Key(p, i));
    keys.chain(table.checks.iter().map(ConstraintRef::Check))
        .collect()
}

/// `pg_get_constraintdef` of a table's constraint.
pub fn constraint_definition(table: &TableDef, constraint: &ConstraintRef<'_>) -> String {
    match constraint {
        ConstraintRef::Key(_, index) => {
            let columns: Vec<String> = index
                .columns
                .iter()
                .map(|c| tempora_catalog::quote_ident(c))
                .collect();
            let kind = if index.primary {
                "PRIMARY KEY"
            } else {
                "UNIQUE"
            };
            format!("{kind} ({})", columns.join(", "))
        }
        ConstraintRef::Check(check) => {
            let _ = table;
            format!("CHECK (({}))", check.expr)
        }
    }
}

fn constraints(state: &CatalogState) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for table in state.tables.values() {
        for (number, constraint) in table_constraints(table).iter().enumerate() {
            let (name, kind, index_oid, keys) = match constraint {
                ConstraintRef::Key(position, index) => (
                    index.name.clone(),
                    if index.primary { 'p' } else { 'u' },
                    oids::index(table.id, *position),
                    Cell::Ints(
                        index
                            .columns
                            .iter()
                            .map(|c| table.column_index(c).map_or(0, |i| i as i64 + 1))
                            .collect(),
                    ),
                ),
                ConstraintRef::Check(check) => (check.name.clone(), 'c', 0, Cell::Null),
            };
            let check = match constraint {
                ConstraintRef::Check(check) => Some(check.expr.clone()),
                ConstraintRef::Key(..) => None,
            };
            rows.push(row![
                oids::constraint(table.id, number),
                name,
                oids::PUBLIC_NAMESPACE,
                kind,
                false,
                false,
                true,
                oids::table(table.id),
                0u32,
                index_oid,
                0u32,
                0u32,
                " ",
                " ",
                " ",
                true,
                0i32,
                false,
                keys,
                Cell::Null,
                Cell::Null,
                Cell::Null,
                Cell::Null,
                Cell::Null,
                Cell::Null,
                check
            ]);
        }
    }
    rows
}

const ATTRDEF: Columns = &[
    ("oid", Oid),
    ("adrelid", Oid),
    ("adnum", Int2),
    ("adbin", Text),
];

fn attribute_defaults(state: &CatalogState) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for table in state.tables.values() {
        for (index, column) in table.columns.iter().enumerate() {
            if let Some(default) = default_expression(column) {
                rows.push(row![
                    oids::attribute_default(table.id, index),
                    oids::table(table.id),
                    (index + 1) as i16,
                    default
                ]);
            }
        }
    }
    rows
}

const AM: Columns = &[
    ("oid", Oid),
    ("amname", Name),
    ("amhandler", Text),
    ("amtype", Char),
];

fn access_methods() -> Vec<Vec<Cell>> {
    vec![
        row![oids::HEAP_AM, "heap", "heap_tableam_handler", 't'],
        row![oids::BTREE_AM, "btree", "bthandler", 'i'],
        row![405u32, "hash", "hashhandler", 'i'],
        row![783u32, "gist", "gisthandler", 'i'],
        row![oids::GIN_AM, "gin", "ginhandler", 'i'],
        row![4000u32, "spgist", "spghandler", 'i'],
        row![3580u32, "brin", "brinhandler", 'i'],
    ]
}

const PROC: Columns = &[
    ("oid", Oid),
    ("proname", Name),
    ("pronamespace", Oid),
    ("proowner", Oid),
    ("prolang", Oid),
    ("procost", Float4),
    ("prorows", Float4),
    ("provariadic", Oid),
    ("prosupport", Text),
    ("prokind", Char),
    ("prosecdef", Bool),
    ("proleakproof", Bool),
    ("proisstrict", Bool),
    ("proretset", Bool),
    ("provolatile", Char),
    ("proparallel", Char),
    ("pronargs", Int2),
    ("pronargdefaults", Int2),
    ("prorettype", Oid),
    ("proargtypes", OidVector),
    ("proallargtypes", OidArray),
    ("proargmodes", CharArray),
    ("proargnames", TextArray),
    ("proargdefaults", Text),
    ("protrftypes", OidArray),
    ("prosrc", Text),
    ("probin", Text),
    ("prosqlbody", Text),
    ("proconfig", TextArray),
    ("proacl", TextArray),
];

/// A function tempora provides in the `public` schema, as TimescaleDB
/// installs its API there: name, kind (`f` or `a`), result, arguments.
pub struct Function {
    pub name: &'static str,
    pub kind: char,
    pub result: &'static str,
    pub arguments: &'static str,
    pub argument_types: &'static [u32],
    pub result_type: u32,
}

pub const FUNCTIONS: &[Function] = &[
    Function {
        name: "create_hypertable",
        kind: 'f',
        result: "TABLE(hypertable_id integer, schema_name name, table_name name, created boolean)",
        arguments: "relation regclass, time_column_name name, partitioning_column name DEFAULT NULL::name, number_partitions integer DEFAULT NULL::integer, associated_schema_name name DEFAULT NULL::name, associated_table_prefix name DEFAULT NULL::name, chunk_time_interval anyelement DEFAULT NULL::bigint, create_default_indexes boolean DEFAULT true, if_not_exists boolean DEFAULT false, partitioning_func regproc DEFAULT NULL::regproc, migrate_data boolean DEFAULT false, chunk_target_size text DEFAULT NULL::text, chunk_sizing_func regproc DEFAULT '_timescaledb_functions.calculate_chunk_interval'::regproc, time_partitioning_func regproc DEFAULT NULL::regproc",
        argument_types: &[2205, 19],
        result_type: 2249,
    },
    Function {
        name: "by_range",
        kind: 'f',
        result: "_timescaledb_internal.dimension_info",
        arguments: "column_name name, partition_interval anyelement DEFAULT NULL::bigint, partition_func regproc DEFAULT NULL::regproc",
        argument_types: &[19],
        result_type: 2249,
    },
    Function {
        name: "set_chunk_time_interval",
        kind: 'f',
        result: "void",
        arguments: "hypertable regclass, chunk_time_interval anyelement, dimension_name name DEFAULT NULL::name",
        argument_types: &[2205, 2283],
        result_type: 2278,
    },
    Function {
        name: "show_chunks",
        kind: 'f',
        result: "SETOF regclass",
        arguments: "relation regclass, older_than \"any\" DEFAULT NULL::unknown, newer_than \"any\" DEFAULT NULL::unknown, created_before \"any\" DEFAULT NULL::unknown, created_after \"any\" DEFAULT NULL::unknown",
        argument_types: &[2205],
        result_type: 2205,
    },
    Function {
        name: "drop_chunks",
        kind: 'f',
        result: "SETOF text",
        arguments: "relation regclass, older_than \"any\" DEFAULT NULL::unknown, newer_than \"any\" DEFAULT NULL::unknown, verbose boolean DEFAULT false, created_before \"any\" DEFAULT NULL::unknown, created_after \"any\" DEFAULT NULL::unknown",
        argument_types: &[2205],
        result_type: 25,
    },
    Function {
        name: "time_bucket",
        kind: 'f',
        result: "timestamp with time zone",
        arguments: "bucket_width interval, ts timestamp with time zone",
        argument_types: &[1186, 1184],
        result_type: 1184,
    },
    Function {
        name: "first",
        kind: 'a',
        result: "anyelement",
        arguments: "anyelement, \"any\"",
        argument_types: &[2283, 2276],
        result_type: 2283,
    },
    Function {
        name: "last",
        kind: 'a',
        result: "anyelement",
        arguments: "anyelement, \"any\"",
        argument_types: &[2283, 2276],
        result_type: 2283,
    },
    Function {
        name: "histogram",
        kind: 'a',
        result: "integer[]",
        arguments: "double precision, double precision, double precision, integer",
        argument_types: &[701, 701, 701, 23],
        result_type: 1007,
    },
];

/// The OID of the function at `index` in [`FUNCTIONS`].
pub fn function_oid(index: usize) -> u32 {
    14_000 + index as u32
}

fn functions() -> Vec<Vec<Cell>> {
    FUNCTIONS
        .iter()
        .enumerate()
        .map(|(index, f)| {
            row![
                function_oid(index),
                f.name,
                oids::PUBLIC_NAMESPACE,
                OWNER,
                13u32,
                1.0f32,
                0.0f32,
                0u32,
                "-",
                f.kind,
                false,
                false,
                false,
                f.result.starts_with("SETOF") || f.result.starts_with("TABLE"),
                'v',
                'u',
                f.argument_types.len() as i16,
                0i16,
                f.result_type,
                Cell::Ints(f.argument_types.iter().map(|t| *t as i64).collect()),
                Cell::Null,
                Cell::Null,
                Cell::Null,
                Cell::Null,
                Cell::Null,
                f.name,
                Cell::Null,
                Cell::Null,
                Cell::Null,
                Cell::Null
            ]
        })
        .collect()
}

const DATABASE: Columns = &[
    ("oid", Oid),
    ("datname", Name),
    ("datdba", Oid),
    ("encoding", Int4),
    ("datlocprovider", Char),
    ("datistemplate", Bool),
    ("datallowconn", Bool),
    ("datconnlimit", Int4),
    ("dattablespace", Oid),
    ("datcollate", Text),
    ("datctype", Text),
    ("daticulocale", Text),
    ("datcollversion", Text),
    ("datacl", TextArray),
];

fn databases() -> Vec<Vec<Cell>> {
    vec![row![
        oids::DATABASE,
        crate::DATABASE_NAME,
        OWNER,
        6i32,
        'c',
        false,
        true,
        -1i32,
        oids::DEFAULT_TABLESPACE,
        "C.UTF-8",
        "C.UTF-8",
        Cell::Null,
        Cell::Null,
        Cell::Null
    ]]
}

const ROLES: Columns = &[
    ("rolname", Name),
    ("rolsuper", Bool),
    ("rolinherit", Bool),
    ("rolcreaterole", Bool),
    ("rolcreatedb", Bool),
    ("rolcanlogin", Bool),
    ("rolreplication", Bool),
    ("rolconnlimit", Int4),
    ("rolpassword", Text),
    ("rolvaliduntil", Timestamptz),
    ("rolbypassrls", Bool),
    ("rolconfig", TextArray),
    ("oid", Oid),
];

/// A role's OID: the superuser's is PostgreSQL's 10; others come from
/// the name.
pub fn role_oid(name: &str) -> u32 {
    if name == tempora_catalog::SUPERUSER {
        OWNER
    } else {
        oids::named("role", name)
    }
}

fn roles(state: &CatalogState) -> Vec<Vec<Cell>> {
    state
        .all_roles()
        .into_iter()
        .map(|role| {
            row![
                role.name.clone(),
                role.superuser,
                true,
                role.superuser,
                role.superuser,
                role.login,
                role.superuser,
                -1i32,
                "********",
                Cell::Null,
                role.superuser,
                Cell::Null,
                role_oid(&role.name)
            ]
        })
        .collect()
}

const USER: Columns = &[
    ("usename", Name),
    ("usesysid", Oid),
    ("usecreatedb", Bool),
    ("usesuper", Bool),
    ("userepl", Bool),
    ("usebypassrls", Bool),
    ("passwd", Text),
    ("valuntil", Timestamptz),
    ("useconfig", TextArray),
];

fn users(state: &CatalogState) -> Vec<Vec<Cell>> {
    state
        .all_roles()
        .into_iter()
        .filter(|role| role.login)
        .map(|role| {
            row![
                role.name.clone(),
                role_oid(&role.name),
                role.superuser,
                role.superuser,
                role.superuser,
                role.superuser,
                "********",
                Cell::Null,
                Cell::Null
            ]
        })
        .collect()
}

const SETTINGS: Columns = &[
    ("name", Text),
    ("setting", Text),
    ("unit", Text),
    ("category", Text),
    ("short_desc", Text),
    ("extra_desc", Text),
    ("context", Text),
    ("vartype", Text),
    ("source", Text),
    ("min_val", Text),
    ("max_val", Text),
    ("enumvals", TextArray),
    ("boot_val", Text),
    ("reset_val", Text),
    ("sourcefile", Text),
    ("sourceline", Int4),
    ("pending_restart", Bool),
];

fn settings(session: &SessionInfo) -> Vec<Vec<Cell>> {
    session
        .settings()
        .into_iter()
        .map(|(name, value)| {
            let vartype = if value == "on" || value == "off" {
                "bool"
            } else if value.parse::<i64>().is_ok() {
                "integer"
            } else {
                "string"
            };
            row![
                name,
                value.clone(),
                Cell::Null,
                "Ungrouped",
                "",
                Cell::Null,
                "user",
                vartype,
                "default",
                Cell::Null,
                Cell::Null,
                Cell::Null,
                value.clone(),
                value,
                Cell::Null,
                Cell::Null,
                false
            ]
        })
        .collect()
}

const EXTENSION: Columns = &[
    ("oid", Oid),
    ("extname", Name),
    ("extowner", Oid),
    ("extnamespace", Oid),
    ("extrelocatable", Bool),
    ("extversion", Text),
    ("extconfig", OidArray),
    ("extcondition", TextArray),
];

fn timescaledb_installed(state: &CatalogState) -> bool {
    state.meta_value(META_TIMESCALEDB_INSTALLED) == 1
}

fn extensions(state: &CatalogState) -> Vec<Vec<Cell>> {
    let mut rows = vec![row![
        13_500u32,
        "plpgsql",
        OWNER,
        PG_CATALOG,
        false,
        "1.0",
        Cell::Null,
        Cell::Null
    ]];
    if timescaledb_installed(state) {
        rows.push(row![
            16_385u32,
            "timescaledb",
            OWNER,
            oids::PUBLIC_NAMESPACE,
            false,
            TIMESCALEDB_VERSION,
            Cell::Null,
            Cell::Null
        ]);
    }
    rows
}

const AVAILABLE_EXTENSIONS: Columns = &[
    ("name", Name),
    ("default_version", Text),
    ("installed_version", Text),
    ("comment", Text),
];

fn available_extensions(state: &CatalogState) -> Vec<Vec<Cell>> {
    vec![
        row!["plpgsql", "1.0", "1.0", "PL/pgSQL procedural language"],
        row![
            "timescaledb",
            TIMESCALEDB_VERSION,
            timescaledb_installed(state).then_some(TIMESCALEDB_VERSION),
            TIMESCALEDB_DESCRIPTION
        ],
    ]
}

const INHERITS: Columns = &[
    ("inhrelid", Oid),
    ("inhparent", Oid),
    ("inhseqno", Int4),
    ("inhdetachpending", Bool),
];

fn inherits(state: &CatalogState) -> Vec<Vec<Cell>> {
    state
        .hypertables()
        .flat_map(|table| {
            state
                .chunks_of(table.id)
                .into_iter()
                .map(|c| row![oids::chunk(c.id), oids::table(table.id), 1i32, false])
        })
        .collect()
}

const COLLATION: Columns = &[
    ("oid", Oid),
    ("collname", Name),
    ("collnamespace", Oid),
    ("collowner", Oid),
    ("collprovider", Char),
    ("collisdeterministic", Bool),
    ("collencoding", Int4),
    ("collcollate", Text),
    ("collctype", Text),
    ("colliculocale", Text),
    ("collversion", Text),
];

fn collations() -> Vec<Vec<Cell>> {
    vec![
        row![
            oids::DEFAULT_COLLATION,
            "default",
            PG_CATALOG,
            OWNER,
            'd',
            true,
            -1i32,
            Cell::Null,
            Cell::Null,
            Cell::Null,
            Cell::Null
        ],
        row![
            oids::C_COLLATION,
            "C",
            PG_CATALOG,
            OWNER,
            'c',
            true,
            -1i32,
            "C",
            "C",
            Cell::Null,
            Cell::Null
        ],
        row![
            951u32,
            "POSIX",
            PG_CATALOG,
            OWNER,
            'c',
            true,
            -1i32,
            "POSIX",
            "POSIX",
            Cell::Null,
            Cell::Null
        ],
    ]
}

const TABLESPACE: Columns = &[
    ("oid", Oid),
    ("spcname", Name),
    ("spcowner", Oid),
    ("spcacl", TextArray),
    ("spcoptions", TextArray),
];

fn tablespaces() -> Vec<Vec<Cell>> {
    vec![
        row![
            oids::DEFAULT_TABLESPACE,
            "pg_default",
            OWNER,
            Cell::Null,
            Cell::Null
        ],
        row![1664u32, "pg_global", OWNER, Cell::Null, Cell::Null],
    ]
}

const SEQUENCE: Columns = &[
    ("seqrelid", Oid),
    ("seqtypid", Oid),
    ("seqstart", Int8),
    ("seqincrement", Int8),
    ("seqmax", Int8),
    ("seqmin", Int8),
    ("seqcache", Int8),
    ("seqcycle", Bool),
];

fn sequences(state: &CatalogState) -> Vec<Vec<Cell>> {
    state
        .sequences
        .values()
        .map(|s| {
            row![
                oids::named("sequence", &s.name),
                20u32,
                s.start_value,
                s.increment,
                s.max_value,
                s.min_value,
                1i64,
                false
            ]
        })
        .collect()
}

const SEQUENCES: Columns = &[
    ("schemaname", Name),
    ("sequencename", Name),
    ("sequenceowner", Name),
    ("data_type", Text),
    ("start_value", Int8),
    ("min_value", Int8),
    ("max_value", Int8),
    ("increment_by", Int8),
    ("cycle", Bool),
    ("cache_size", Int8),
    ("last_value", Int8),
];

fn sequences_view(state: &CatalogState) -> Vec<Vec<Cell>> {
    state
        .sequences
        .values()
        .map(|s| {
            row![
                DEFAULT_SCHEMA,
                s.name.clone(),
                OWNER_NAME,
                "bigint",
                s.start_value,
                s.min_value,
                s.max_value,
                s.increment,
                false,
                1i64,
                s.last_value
            ]
        })
        .collect()
}

const DEPEND: Columns = &[
    ("classid", Oid),
    ("objid", Oid),
    ("objsubid", Int4),
    ("refclassid", Oid),
    ("refobjid", Oid),
    ("refobjsubid", Int4),
    ("deptype", Char),
];

/// Sequences owned by columns (`serial`), as PostgreSQL records them.
fn dependencies(state: &CatalogState) -> Vec<Vec<Cell>> {
    state
        .sequences
        .values()
        .filter_map(|s| {
            let (table_id, column) = s.owned_by.as_ref()?;
            let table = state.tables.get(table_id)?;
            let number = table.column_index(column)? + 1;
            Some(row![
                oids::PG_CLASS,
                oids::named("sequence", &s.name),
                0i32,
                oids::PG_CLASS,
                oids::table(*table_id),
                number as i32,
                'a'
            ])
        })
        .collect()
}

const TABLES: Columns = &[
    ("schemaname", Name),
    ("tablename", Name),
    ("tableowner", Name),
    ("tablespace", Name),
    ("hasindexes", Bool),
    ("hasrules", Bool),
    ("hastriggers", Bool),
    ("rowsecurity", Bool),
];

fn tables_view(state: &CatalogState) -> Vec<Vec<Cell>> {
    state
        .tables
        .values()
        .map(|t| {
            row![
                DEFAULT_SCHEMA,
                t.name.clone(),
                OWNER_NAME,
                Cell::Null,
                !t.indexes.is_empty(),
                false,
                false,
                false
            ]
        })
        .collect()
}

const VIEWS: Columns = &[
    ("schemaname", Name),
    ("viewname", Name),
    ("viewowner", Name),
    ("definition", Text),
];

fn views_view(state: &CatalogState) -> Vec<Vec<Cell>> {
    state
        .views
        .values()
        .map(|v| row![DEFAULT_SCHEMA, v.name.clone(), OWNER_NAME, v.query.clone()])
        .collect()
}

const INDEXES: Columns = &[
    ("schemaname", Name),
    ("tablename", Name),
    ("indexname", Name),
    ("tablespace", Name),
    ("indexdef", Text),
];

fn indexes_view(state: &CatalogState) -> Vec<Vec<Cell>> {
    state
        .tables
        .values()
        .flat_map(|t| {
            t.indexes.iter().map(|i| {
                row![
                    DEFAULT_SCHEMA,
                    t.name.clone(),
                    i.name.clone(),
                    Cell::Null,
                    i.definition(&t.name)
                ]
            })
        })
        .collect()
}

const LANGUAGE: Columns = &[
    ("oid", Oid),
    ("lanname", Name),
    ("lanowner", Oid),
    ("lanispl", Bool),
    ("lanpltrusted", Bool),
    ("lanplcallfoid", Oid),
    ("laninline", Oid),
    ("lanvalidator", Oid),
    ("lanacl", TextArray),
];

fn languages() -> Vec<Vec<Cell>> {
    vec![
        row![
            12u32,
            "internal",
            OWNER,
            false,
            false,
            0u32,
            0u32,
            0u32,
            Cell::Null
        ],
        row![
            13u32,
            "c",
            OWNER,
            false,
            false,
            0u32,
            0u32,
            0u32,
            Cell::Null
        ],
        row![
            14u32,
            "sql",
            OWNER,
            false,
            true,
            0u32,
            0u32,
            0u32,
            Cell::Null
        ],
    ]
}

const DESCRIPTION: Columns = &[
    ("objoid", Oid),
    ("classoid", Oid),
    ("objsubid", Int4),
    ("description", Text),
];

/// Comments: the extensions' (tempora has no COMMENT ON yet).
fn descriptions(state: &CatalogState) -> Vec<Vec<Cell>> {
    extensions(state)
        .into_iter()
        .map(|row| {
            let oid = row[0].clone();
            let description = match &row[1] {
                Cell::Text(name) if name == "plpgsql" => "PL/pgSQL procedural language",
                _ => TIMESCALEDB_DESCRIPTION,
            };
            vec![oid, Cell::Int(3079), Cell::Int(0), description.into()]
        })
        .collect()
}

const TIMESCALEDB_DESCRIPTION: &str =
    "Enables scalable inserts and complex queries for time-series data (built into tempora)";

const SHDESCRIPTION: Columns = &[("objoid", Oid), ("classoid", Oid), ("description", Text)];

const TRIGGER: Columns = &[
    ("oid", Oid),
    ("tgrelid", Oid),
    ("tgparentid", Oid),
    ("tgname", Name),
    ("tgfoid", Oid),
    ("tgtype", Int2),
    ("tgenabled", Char),
    ("tgisinternal", Bool),
    ("tgconstrrelid", Oid),
    ("tgconstrindid", Oid),
    ("tgconstraint", Oid),
    ("tgdeferrable", Bool),
    ("tginitdeferred", Bool),
    ("tgnargs", Int2),
    ("tgattr", Int2Vector),
    ("tgargs", Text),
    ("tgqual", Text),
    ("tgoldtable", Name),
    ("tgnewtable", Name),
];

const REWRITE: Columns = &[
    ("oid", Oid),
    ("rulename", Name),
    ("ev_class", Oid),
    ("ev_type", Char),
    ("ev_enabled", Char),
    ("is_instead", Bool),
    ("ev_qual", Text),
    ("ev_action", Text),
];

const POLICY: Columns = &[
    ("oid", Oid),
    ("polname", Name),
    ("polrelid", Oid),
    ("polcmd", Char),
    ("polpermissive", Bool),
    ("polroles", OidArray),
    ("polqual", Text),
    ("polwithcheck", Text),
];

const STATISTIC_EXT: Columns = &[
    ("oid", Oid),
    ("stxrelid", Oid),
    ("stxname", Name),
    ("stxnamespace", Oid),
    ("stxowner", Oid),
    ("stxstattarget", Int4),
    ("stxkeys", Int2Vector),
    ("stxkind", CharArray),
    ("stxexprs", Text),
];

const PUBLICATION: Columns = &[
    ("oid", Oid),
    ("pubname", Name),
    ("pubowner", Oid),
    ("puballtables", Bool),
    ("pubinsert", Bool),
    ("pubupdate", Bool),
    ("pubdelete", Bool),
    ("pubtruncate", Bool),
    ("pubviaroot", Bool),
];

const PUBLICATION_REL: Columns = &[
    ("oid", Oid),
    ("prpubid", Oid),
    ("prrelid", Oid),
    ("prqual", Text),
    ("prattrs", Int2Vector),
];

const PUBLICATION_NAMESPACE: Columns = &[("oid", Oid), ("pnpubid", Oid), ("pnnspid", Oid)];

const ENUM: Columns = &[
    ("oid", Oid),
    ("enumtypid", Oid),
    ("enumsortorder", Float4),
    ("enumlabel", Name),
];

const RANGE: Columns = &[
    ("rngtypid", Oid),
    ("rngsubtype", Oid),
    ("rngmultitypid", Oid),
    ("rngcollation", Oid),
    ("rngsubopc", Oid),
    ("rngcanonical", Text),
    ("rngsubdiff", Text),
];

const OPCLASS: Columns = &[
    ("oid", Oid),
    ("opcmethod", Oid),
    ("opcname", Name),
    ("opcnamespace", Oid),
    ("opcowner", Oid),
    ("opcfamily", Oid),
    ("opcintype", Oid),
    ("opcdefault", Bool),
    ("opckeytype", Oid),
];

const AGGREGATE: Columns = &[
    ("aggfnoid", Oid),
    ("aggkind", Char),
    ("aggnumdirectargs", Int2),
    ("aggtransfn", Text),
    ("aggfinalfn", Text),
    ("aggtranstype", Oid),
    ("agginitval", Text),
];

const AUTH_MEMBERS: Columns = &[
    ("roleid", Oid),
    ("member", Oid),
    ("grantor", Oid),
    ("admin_option", Bool),
];

const MATVIEWS: Columns = &[
    ("schemaname", Name),
    ("matviewname", Name),
    ("matviewowner", Name),
    ("tablespace", Name),
    ("hasindexes", Bool),
    ("ispopulated", Bool),
    ("definition", Text),
];

const LOCKS: Columns = &[
    ("locktype", Text),
    ("database", Oid),
    ("relation", Oid),
    ("page", Int4),
    ("tuple", Int2),
    ("virtualxid", Text),
    ("transactionid", Text),
    ("classid", Oid),
    ("objid", Oid),
    ("objsubid", Int2),
    ("virtualtransaction", Text),
    ("pid", Int4),
    ("mode", Text),
    ("granted", Bool),
    ("fastpath", Bool),
    ("waitstart", Timestamptz),
];

const STAT_ACTIVITY: Columns = &[
    ("datid", Oid),
    ("datname", Name),
    ("pid", Int4),
    ("leader_pid", Int4),
    ("usesysid", Oid),
    ("usename", Name),
    ("application_name", Text),
    ("client_addr", Text),
    ("client_hostname", Text),
    ("client_port", Int4),
    ("backend_start", Timestamptz),
    ("xact_start", Timestamptz),
    ("query_start", Timestamptz),
    ("state_change", Timestamptz),
    ("wait_event_type", Text),
    ("wait_event", Text),
    ("state", Text),
    ("backend_xid", Text),
    ("backend_xmin", Text),
    ("query_id", Int8),
    ("query", Text),
    ("backend_type", Text),
];

/// This session's own row (other sessions are not listed yet).
fn activity(session: &SessionInfo) -> Vec<Vec<Cell>> {
    vec![row![
        oids::DATABASE,
        crate::DATABASE_NAME,
        session.backend_pid(),
        Cell::Null,
        OWNER,
        session.user(),
        session.setting("application_name").unwrap_or_default(),
        Cell::Null,
        Cell::Null,
        Cell::Null,
        Cell::Null,
        Cell::Null,
        Cell::Null,
        Cell::Null,
        Cell::Null,
        Cell::Null,
        "active",
        Cell::Null,
        Cell::Null,
        Cell::Null,
        Cell::Null,
        "client backend"
    ]]
}

const TIMEZONE_NAMES: Columns = &[
    ("name", Text),
    ("abbrev", Text),
    ("utc_offset", Int8),
    ("is_dst", Bool),
];
