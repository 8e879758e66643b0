//! The schemas a query can name: `public` (user tables, resolved from the
//! catalog at planning time, so DDL needs no re-registration),
//! `timescaledb_information`, `pg_catalog` and `information_schema`.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::common::Result;

use tempora_catalog::DEFAULT_SCHEMA;
use tempora_storage::Store;

use crate::information_schema::{INFORMATION_SCHEMA, InformationSchema};
use crate::pg_catalog::{PG_CATALOG_NAME, PgCatalogSchema};
use crate::provider::TemporaTable;
use crate::session_info::SessionInfo;
use crate::views;
use crate::visibility::{Resolved, SessionReads};

/// The one database, `postgres`.
#[derive(Debug)]
pub struct DatabaseCatalog {
    public: Arc<PublicSchema>,
    timescale: Arc<views::TimescaleInformation>,
    pg_catalog: Arc<PgCatalogSchema>,
    information: Arc<InformationSchema>,
}

impl DatabaseCatalog {
    pub fn new(reads: Arc<SessionReads>, session: Arc<SessionInfo>) -> Self {
        let store = reads.store().clone();
        let pg_catalog = Arc::new(PgCatalogSchema::new(store.clone(), session));
        DatabaseCatalog {
            public: Arc::new(PublicSchema {
                store: store.clone(),
                reads,
                pg_catalog: pg_catalog.clone(),
            }),
            timescale: Arc::new(views::TimescaleInformation::new(store.clone())),
            information: Arc::new(InformationSchema::new(store)),
            pg_catalog,
        }
    }
}

impl CatalogProvider for DatabaseCatalog {
    fn schema_names(&self) -> Vec<String> {
        vec![
            DEFAULT_SCHEMA.to_owned(),
            views::TIMESCALEDB_INFORMATION.to_owned(),
            PG_CATALOG_NAME.to_owned(),
            INFORMATION_SCHEMA.to_owned(),
        ]
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        match name {
            DEFAULT_SCHEMA => Some(self.public.clone()),
            views::TIMESCALEDB_INFORMATION => Some(self.timescale.clone()),
            PG_CATALOG_NAME => Some(self.pg_catalog.clone()),
            INFORMATION_SCHEMA => Some(self.information.clone()),
            _ => None,
        }
    }
}

/// User tables.
#[derive(Debug)]
pub struct PublicSchema {
    store: Arc<Store>,
    reads: Arc<SessionReads>,
    pg_catalog: Arc<PgCatalogSchema>,
}

#[async_trait]
impl SchemaProvider for PublicSchema {
    fn table_names(&self) -> Vec<String> {
        self.store
            .catalog()
            .snapshot()
            .tables
            .values()
            .map(|t| t.name.clone())
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if let Some(rows) = self.reads.bound_rows(name) {
            let table = datafusion::datasource::MemTable::try_new(rows.schema(), vec![vec![rows]])?;
            return Ok(Some(Arc::new(table)));
        }
        let state = self.store.catalog().snapshot();
        if let Some(target) = name.strip_prefix(crate::provider::ROWID_SCAN_PREFIX) {
            let target = match self.reads.resolve(target) {
                Resolved::AsIs => target.to_owned(),
                Resolved::Renamed(catalog_name) => catalog_name,
                Resolved::Hidden => return Ok(None),
            };
            return Ok(state.table_by_name(&target).map(|table| {
                Arc::new(TemporaTable::with_rowid(self.reads.clone(), table.clone()))
                    as Arc<dyn TableProvider>
            }));
        }
        let name = match self.reads.resolve(name) {
            Resolved::AsIs => name.to_owned(),
            Resolved::Renamed(catalog_name) => catalog_name,
            Resolved::Hidden => return Ok(None),
        };
        let name = name.as_str();
        match state.table_by_name(name) {
            Some(table) => Ok(Some(Arc::new(TemporaTable::new(
                self.reads.clone(),
                table.clone(),
            )))),
            // PostgreSQL searches pg_catalog before the user's schemas, so an
            // unqualified `pg_extension` resolves there.
            None => self.pg_catalog.table(name).await,
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        let name = match self.reads.resolve(name) {
            Resolved::AsIs => name.to_owned(),
            Resolved::Renamed(catalog_name) => catalog_name,
            Resolved::Hidden => return false,
        };
        self.store
            .catalog()
            .snapshot()
            .table_by_name(&name)
            .is_some()
    }
}
