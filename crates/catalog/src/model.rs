//! The catalog's entries. They are serialised as JSON inside redb values, so
//! fields may be added (with serde defaults) but never renamed or removed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};
use tempora_types::PgType;

pub type TableId = u64;
pub type ChunkId = u64;

/// The schema every user table lives in.
pub const DEFAULT_SCHEMA: &str = "public";
/// The schema chunk tables are named in, as TimescaleDB names them.
pub const CHUNK_SCHEMA: &str = "_timescaledb_internal";
/// The hidden last column of every stored row: its row id, unique in the
/// data directory and never reused, by which UPDATE and DELETE name rows.
pub const ROWID_COLUMN: &str = "__tempora_rowid";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    pub pg_type: PgType,
    pub not_null: bool,
    /// The DEFAULT expression as SQL text, evaluated at insert time.
    pub default_sql: Option<String>,
    /// `GENERATED ALWAYS AS IDENTITY`: INSERT may not give it a value.
    #[serde(default)]
    pub identity_always: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    pub id: TableId,
    pub name: String,
    pub columns: Vec<ColumnDef>,
    pub hypertable: Option<HypertableDef>,
    /// Keys and indexes, in creation order.
    #[serde(default)]
    pub indexes: Vec<IndexDef>,
    /// CHECK constraints, in creation order.
    #[serde(default)]
    pub checks: Vec<CheckDef>,
}

/// A CHECK constraint: every row must make its expression true or NULL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckDef {
    pub name: String,
    /// The boolean expression, as SQL text over the table's columns.
    pub expr: String,
}

/// An index: a PRIMARY KEY or UNIQUE constraint's, or one CREATE INDEX made.
///
/// tempora stores rows by time in columnar segments, so an index is not a
/// B-tree over the rows: a unique index is enforced by the store's key
/// index (key values to row ids, see `tempora_storage::keys`), and every
/// index is recorded for clients (`pg_indexes`, psql's `\d`) and for the
/// planner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexDef {
    pub name: String,
    /// Key columns, by name (kept in step with column renames).
    pub columns: Vec<String>,
    /// Sorted descending, per key column.
    #[serde(default)]
    pub descending: Vec<bool>,
    pub unique: bool,
    pub primary: bool,
    /// Made by a PRIMARY KEY or UNIQUE constraint (dropped with ALTER TABLE
    /// ... DROP CONSTRAINT), rather than by CREATE INDEX.
    pub constraint: bool,
    /// The access method named: `btree` (the default) or `gin`.
    #[serde(default = "default_index_method")]
    pub method: String,
    /// For an index on expressions, their SQL text (`columns` is then empty).
    #[serde(default)]
    pub expressions: Vec<String>,
}

fn default_index_method() -> String {
    "btree".to_owned()
}

impl IndexDef {
    /// PostgreSQL's CREATE INDEX text for it (`pg_indexes.indexdef`).
    pub fn definition(&self, table: &str) -> String {
        let keys: Vec<String> = if self.expressions.is_empty() {
            self.columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let desc = self.descending.get(i).copied().unwrap_or(false);
                    format!("{}{}", quote_ident(c), if desc { " DESC" } else { "" })
                })
                .collect()
        } else {
            self.expressions.iter().map(|e| format!("({e})")).collect()
        };
        format!(
            "CREATE {}INDEX {} ON public.{} USING {} ({})",
            if self.unique { "UNIQUE " } else { "" },
            quote_ident(&self.name),
            quote_ident(table),
            self.method,
            keys.join(", ")
        )
    }
}

/// PostgreSQL's keywords that are not unreserved (reserved, column-name
/// and type/function-name keywords): `quote_ident` quotes them.
#[rustfmt::skip]
const QUOTED_KEYWORDS: &[&str] = &[
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric",
    "authorization", "between", "bigint", "binary", "bit", "boolean", "both", "case", "cast",
    "char", "character", "check", "coalesce", "collate", "collation", "column",
    "concurrently", "constraint", "create", "cross", "current_catalog", "current_date",
    "current_role", "current_schema", "current_time", "current_timestamp", "current_user",
    "dec", "decimal", "default", "deferrable", "desc", "distinct", "do", "else", "end",
    "except", "exists", "extract", "false", "fetch", "float", "for", "foreign", "freeze",
    "from", "full", "grant", "greatest", "group", "grouping", "having", "ilike", "in",
    "initially", "inner", "inout", "int", "integer", "intersect", "interval", "into", "is",
    "isnull", "join", "json", "lateral", "leading", "least", "left", "like", "limit",
    "localtime", "localtimestamp", "national", "natural", "nchar", "none", "normalize",
    "not", "notnull", "null", "nullif", "numeric", "offset", "on", "only", "or", "order",
    "out", "outer", "overlaps", "overlay", "placing", "position", "precision", "primary",
    "real", "references", "returning", "right", "row", "select", "session_user", "setof",
    "similar", "smallint", "some", "substring", "symmetric", "system_user", "table",
    "tablesample", "then", "time", "timestamp", "to", "trailing", "treat", "trim", "true",
    "union", "unique", "user", "using", "values", "varchar", "variadic", "verbose", "when",
    "where", "window", "with",
];

/// An identifier as PostgreSQL prints it: bare when it can be, else quoted.
pub fn quote_ident(name: &str) -> String {
    let bare = !QUOTED_KEYWORDS.contains(&name)
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if bare {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

impl TableDef {
    /// The table's unique indexes (its primary key and unique constraints
    /// among them), which every write must keep unique.
    pub fn unique_indexes(&self) -> impl Iterator<Item = &IndexDef> {
        self.indexes
            .iter()
            .filter(|i| i.unique && i.expressions.is_empty())
    }

    pub fn primary_key(&self) -> Option<&IndexDef> {
        self.indexes.iter().find(|i| i.primary)
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The Arrow schema rows of this table are stored with.
    pub fn arrow_schema(&self) -> SchemaRef {
        self.schemas().0
    }

    /// The schema rows are stored with: the table's columns, then the row id.
    pub fn storage_schema(&self) -> SchemaRef {
        self.schemas().1
    }

    /// Both schemas, from [`SCHEMAS`] when a table with these columns asked
    /// before: every INSERT needs them, and building them allocates a field
    /// and its metadata per column.
    fn schemas(&self) -> (SchemaRef, SchemaRef) {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for column in &self.columns {
            column.name.hash(&mut hasher);
            column.pg_type.hash(&mut hasher);
        }
        let key = hasher.finish();
        let same_shape = |shape: &Shape| {
            shape.len() == self.columns.len()
                && shape
                    .iter()
                    .zip(&self.columns)
                    .all(|((name, pg_type), c)| *name == c.name && *pg_type == c.pg_type)
        };
        let mut cache = SCHEMAS.lock();
        if let Some((_, arrow, storage)) = cache
            .get(&key)
            .and_then(|entries| entries.iter().find(|(shape, ..)| same_shape(shape)))
        {
            return (arrow.clone(), storage.clone());
        }
        let mut fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| c.pg_type.arrow_field(&c.name, true))
            .collect();
        let arrow = Arc::new(Schema::new(fields.clone()));
        fields.push(Field::new(ROWID_COLUMN, DataType::Int64, false));
        let storage = Arc::new(Schema::new(fields));
        if cache.len() >= SCHEMA_CACHE_ENTRIES {
            cache.clear();
        }
        let shape = self
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.pg_type))
            .collect();
        cache
            .entry(key)
            .or_default()
            .push((shape, arrow.clone(), storage.clone()));
        (arrow, storage)
    }
}

/// A table's column names and types: all its schemas depend on.
type Shape = Vec<(String, PgType)>;

/// The schemas of the table shapes asked for lately, by a hash of the
/// shape (cleared when full).
type SchemaCache = HashMap<u64, Vec<(Shape, SchemaRef, SchemaRef)>>;
static SCHEMAS: std::sync::LazyLock<parking_lot::Mutex<SchemaCache>> =
    std::sync::LazyLock::new(Default::default);
const SCHEMA_CACHE_ENTRIES: usize = 4096;

/// The time dimension of a hypertable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HypertableDef {
    /// TimescaleDB's hypertable id, used in chunk names (`_hyper_{id}_{chunk}_chunk`).
    pub hypertable_id: u32,
    pub time_column: String,
    /// Chunk width: microseconds for time types, plain units for integer time.
    pub chunk_interval: i64,
    /// Whether the time column is an integer rather than a timestamp or date.
    pub integer_time: bool,
}

/// Chunk bounds are half-open, `[range_start, range_end)`, aligned to the
/// chunk interval from 0 (the Unix epoch for time types).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkDef {
    pub id: ChunkId,
    pub table_id: TableId,
    pub range_start: i64,
    pub range_end: i64,
    pub segments: Vec<SegmentDef>,
    /// The row ids deleted from the chunk's segments, as of the last checkpoint.
    #[serde(default)]
    pub deletes: Option<DeleteFileDef>,
}

impl ChunkDef {
    /// The chunk's table name as TimescaleDB spells it.
    pub fn table_name(&self, hypertable_id: u32) -> String {
        format!("_hyper_{}_{}_chunk", hypertable_id, self.id)
    }

    pub fn row_count(&self) -> u64 {
        self.segments.iter().map(|s| s.row_count).sum()
    }
}

/// An immutable columnar file holding some of a chunk's rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentDef {
    /// File name relative to the data directory's `segments/` folder.
    pub file_name: String,
    pub row_count: u64,
    pub byte_size: u64,
    /// CRC-32 (IEEE) of the whole file, checked when the file is first read.
    pub crc32: u32,
}

/// A file listing row ids deleted from a chunk (see `docs/formats/deletes.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteFileDef {
    /// File name relative to the data directory's `segments/` folder.
    pub file_name: String,
    pub count: u64,
    pub byte_size: u64,
    pub crc32: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequenceDef {
    pub name: String,
    pub increment: i64,
    pub min_value: i64,
    pub max_value: i64,
    pub start_value: i64,
    /// The last value handed out, or None before the first `nextval`.
    pub last_value: Option<i64>,
    /// The catalog has durably reserved values up to here (PostgreSQL logs 32 ahead);
    /// after a crash `nextval` resumes past it, so no value is handed out twice.
    pub reserved_through: Option<i64>,
    /// The column that owns the sequence (`serial`), dropped with its table.
    pub owned_by: Option<(TableId, String)>,
}

/// A view: a stored query, expanded where a statement names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewDef {
    pub name: String,
    /// The SELECT, as SQL text.
    pub query: String,
    /// The view's column names, fixed when it was created.
    pub columns: Vec<String>,
    /// Tables the query reads (which cannot be dropped while it exists).
    pub depends_on: Vec<String>,
    /// The columns' types, as planned when the view was made (empty for
    /// views made before tempora recorded them).
    #[serde(default)]
    pub column_types: Vec<PgType>,
}

/// A role: a user that may log in, or a group of privileges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleDef {
    pub name: String,
    pub superuser: bool,
    pub login: bool,
    /// The password as PostgreSQL stores it for SCRAM-SHA-256:
    /// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64),
    /// never the password itself.
    pub password_verifier: Option<String>,
}

/// The superuser every data directory has, as a fresh PostgreSQL has.
pub const SUPERUSER: &str = "postgres";

/// One consistent picture of the whole catalog.
#[derive(Debug, Clone, Default)]
pub struct CatalogState {
    pub tables: BTreeMap<TableId, Arc<TableDef>>,
    pub table_names: HashMap<String, TableId>,
    pub chunks: BTreeMap<ChunkId, Arc<ChunkDef>>,
    pub sequences: BTreeMap<String, SequenceDef>,
    pub views: BTreeMap<String, ViewDef>,
    /// Roles besides the built-in superuser, and the superuser once it has a
    /// password.
    pub roles: BTreeMap<String, RoleDef>,
    /// Counters and storage positions, such as `next_id` and `checkpoint_wal_file`.
    pub meta: BTreeMap<String, u64>,
}

impl CatalogState {
    /// The role called `name`: a stored one, or the built-in superuser.
    pub fn role(&self, name: &str) -> Option<RoleDef> {
        match self.roles.get(name) {
            Some(role) => Some(role.clone()),
            None if name == SUPERUSER => Some(RoleDef {
                name: SUPERUSER.to_owned(),
                superuser: true,
                login: true,
                password_verifier: None,
            }),
            None => None,
        }
    }

    /// Every role, the superuser first.
    pub fn all_roles(&self) -> Vec<RoleDef> {
        let mut roles: Vec<RoleDef> = self.role(SUPERUSER).into_iter().collect();
        roles.extend(self.roles.values().filter(|r| r.name != SUPERUSER).cloned());
        roles
    }

    pub fn table_by_name(&self, name: &str) -> Option<&Arc<TableDef>> {
        self.table_names
            .get(name)
            .and_then(|id| self.tables.get(id))
    }

    /// The table's chunks in time order.
    pub fn chunks_of(&self, table_id: TableId) -> Vec<Arc<ChunkDef>> {
        let mut chunks: Vec<_> = self
            .chunks
            .values()
            .filter(|c| c.table_id == table_id)
            .cloned()
            .collect();
        chunks.sort_by_key(|c| c.range_start);
        chunks
    }

    pub fn hypertables(&self) -> impl Iterator<Item = &Arc<TableDef>> {
        self.tables.values().filter(|t| t.hypertable.is_some())
    }

    /// Whether a table, sequence, view or index has this name (they share
    /// one namespace).
    pub fn relation_exists(&self, name: &str) -> bool {
        self.table_names.contains_key(name)
            || self.sequences.contains_key(name)
            || self.views.contains_key(name)
            || self.index_by_name(name).is_some()
    }

    /// The index called `name`, with its table.
    pub fn index_by_name(&self, name: &str) -> Option<(&Arc<TableDef>, &IndexDef)> {
        self.tables
            .values()
            .find_map(|t| t.indexes.iter().find(|i| i.name == name).map(|i| (t, i)))
    }

    /// Names of the sequences a column of a table owns (`serial`, identity).
    pub fn sequences_owned_by(&self, table_id: TableId, column: &str) -> Vec<String> {
        self.sequences
            .values()
            .filter(|s| {
                s.owned_by
                    .as_ref()
                    .is_some_and(|(t, c)| *t == table_id && c == column)
            })
            .map(|s| s.name.clone())
            .collect()
    }

    /// Views that read the table or view `name`.
    pub fn views_depending_on(&self, name: &str) -> Vec<&ViewDef> {
        self.views
            .values()
            .filter(|v| v.depends_on.iter().any(|d| d == name))
            .collect()
    }

    pub fn meta_value(&self, key: &str) -> u64 {
        self.meta.get(key).copied().unwrap_or(0)
    }
}
