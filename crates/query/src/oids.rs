//! Object identifiers, as the system catalogs show them.
//!
//! tempora's catalog names objects by table id, chunk id and name; clients
//! join `pg_class`, `pg_attribute`, `pg_index` and `pg_constraint` by OID.
//! The OIDs are derived, never stored, so they are the same in every query
//! and across restarts:
//!
//! | object                          | OID                                          |
//! |---------------------------------|----------------------------------------------|
//! | built-in types, catalog tables  | PostgreSQL's own (`pg_class` is 1259)        |
//! | schemas                         | `pg_catalog` 11, `public` 2200, others below |
//! | table with id `t`               | 16384 + 256 t                                |
//! | its index at position `i`       | table + 1 + i   (i < 127)                    |
//! | its constraint number `k`       | table + 128 + k (k < 64)                     |
//! | its column `c`'s default        | table + 192 + c (c < 64)                     |
//! | chunk with id `c`               | 1 500 000 000 + c                            |
//! | view or sequence `name`         | 1 000 000 000 + crc32(kind, name) mod 4e8    |
//!
//! Views and sequences are keyed by name in the catalog, so their OIDs come
//! from the name (and change with a rename); two of them could in principle
//! share one, which a client would see as a join that matches twice.

use tempora_catalog::{CatalogState, ChunkId, TableId};

pub const PG_CATALOG_NAMESPACE: u32 = 11;
pub const PG_TOAST_NAMESPACE: u32 = 99;
pub const PUBLIC_NAMESPACE: u32 = 2200;
pub const INFORMATION_SCHEMA_NAMESPACE: u32 = 13_200;
pub const TIMESCALEDB_INFORMATION_NAMESPACE: u32 = 13_300;
pub const CHUNK_NAMESPACE: u32 = 13_301;

/// The superuser's role, as in PostgreSQL.
pub const SUPERUSER_ROLE: u32 = 10;
/// The `postgres` database, as in PostgreSQL 15.
pub const DATABASE: u32 = 5;
/// `pg_am`: heap tables, btree and gin indexes.
pub const HEAP_AM: u32 = 2;
pub const BTREE_AM: u32 = 403;
pub const GIN_AM: u32 = 2742;
/// `pg_collation`: the database default.
pub const DEFAULT_COLLATION: u32 = 100;
pub const C_COLLATION: u32 = 950;
pub const DEFAULT_TABLESPACE: u32 = 1663;
/// `pg_class` entries of catalogs that other catalogs point at.
pub const PG_CLASS: u32 = 1259;
pub const PG_CONSTRAINT: u32 = 2606;
pub const PG_PROC: u32 = 1255;
pub const PG_NAMESPACE: u32 = 2615;
pub const PG_TYPE: u32 = 1247;

const TABLE_BASE: u32 = 16_384;
const PER_TABLE: u32 = 256;
const CONSTRAINT_OFFSET: u32 = 128;
const CHUNK_BASE: u32 = 1_500_000_000;
const NAMED_BASE: u32 = 1_000_000_000;
const NAMED_SPAN: u32 = 400_000_000;

pub fn table(id: TableId) -> u32 {
    TABLE_BASE.wrapping_add((id as u32).wrapping_mul(PER_TABLE))
}

pub fn index(table_id: TableId, position: usize) -> u32 {
    table(table_id) + 1 + position as u32
}

pub fn constraint(table_id: TableId, number: usize) -> u32 {
    table(table_id) + CONSTRAINT_OFFSET + number as u32
}

/// The `pg_attrdef` OID of the default of a table's column at `column`.
pub fn attribute_default(table_id: TableId, column: usize) -> u32 {
    table(table_id) + CONSTRAINT_OFFSET + 64 + (column as u32 % 64)
}

pub fn chunk(id: ChunkId) -> u32 {
    CHUNK_BASE.wrapping_add(id as u32)
}

/// The OID of a view (`kind` "view") or sequence ("sequence") by name.
pub fn named(kind: &str, name: &str) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(kind.as_bytes());
    hasher.update(&[0]);
    hasher.update(name.as_bytes());
    NAMED_BASE + hasher.finalize() % NAMED_SPAN
}

/// What a relation OID names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relation {
    Table(TableId),
    Index(TableId, usize),
    Chunk(ChunkId),
    View(String),
    Sequence(String),
    /// A system catalog table or view, by name.
    Catalog(&'static str),
}

/// The relation an OID names in `state`, if any.
pub fn relation(state: &CatalogState, oid: u32) -> Option<Relation> {
    if let Some(name) = crate::pg_catalog::catalog_relation_name(oid) {
        return Some(Relation::Catalog(name));
    }
    if oid >= CHUNK_BASE {
        let id = (oid - CHUNK_BASE) as ChunkId;
        return state
            .chunks
            .contains_key(&id)
            .then_some(Relation::Chunk(id));
    }
    if oid >= NAMED_BASE {
        if let Some(view) = state.views.keys().find(|v| named("view", v) == oid) {
            return Some(Relation::View(view.clone()));
        }
        return state
            .sequences
            .keys()
            .find(|s| named("sequence", s) == oid)
            .map(|s| Relation::Sequence(s.clone()));
    }
    if oid < TABLE_BASE {
        return None;
    }
    let id = ((oid - TABLE_BASE) / PER_TABLE) as TableId;
    let sub = (oid - TABLE_BASE) % PER_TABLE;
    let table = state.tables.get(&id)?;
    match sub {
        0 => Some(Relation::Table(id)),
        s if s < CONSTRAINT_OFFSET && ((s - 1) as usize) < table.indexes.len() => {
            Some(Relation::Index(id, (s - 1) as usize))
        }
        _ => None,
    }
}

/// The OID of the relation called `name` in schema `schema` (None: the
/// search path, `pg_catalog` then `public`), as `'name'::regclass` finds it.
pub fn relation_by_name(state: &CatalogState, schema: Option<&str>, name: &str) -> Option<u32> {
    let in_catalog = || crate::pg_catalog::catalog_relation_oid(name);
    let in_public = || {
        if let Some(found) = state.table_by_name(name) {
            return Some(table(found.id));
        }
        for found in state.tables.values() {
            if let Some(position) = found.indexes.iter().position(|i| i.name == name) {
                return Some(index(found.id, position));
            }
        }
        if state.views.contains_key(name) {
            return Some(named("view", name));
        }
        state
            .sequences
            .contains_key(name)
            .then(|| named("sequence", name))
    };
    match schema {
        None => in_catalog().or_else(in_public),
        Some("pg_catalog") => in_catalog(),
        Some("public") => in_public(),
        Some(tempora_catalog::CHUNK_SCHEMA) => state.tables.values().find_map(|t| {
            let h = t.hypertable.as_ref()?;
            state
                .chunks_of(t.id)
                .iter()
                .find(|c| c.table_name(h.hypertable_id) == name)
                .map(|c| chunk(c.id))
        }),
        Some(other) => crate::pg_catalog::catalog_relation_oid(&format!("{other}.{name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_kinds_do_not_share_oids() {
        assert_eq!(table(0), 16_384);
        assert!(index(3, 126) < constraint(3, 0));
        assert!(constraint(3, 127) < table(4));
        assert!(table(2_000_000) < NAMED_BASE);
        assert!(named("view", "v") >= NAMED_BASE && named("view", "v") < CHUNK_BASE);
        assert_ne!(named("view", "v"), named("sequence", "v"));
        assert!(
            chunk(1) < i32::MAX as u32,
            "OIDs stay below 2^31 for clients that read them signed"
        );
    }
}
