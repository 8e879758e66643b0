//! What a session's queries may ask about the session itself: its settings
//! (`current_setting`, `pg_settings`), its user and its backend process id.
//! The sql layer owns the rules for changing settings and writes them here;
//! the query layer only reads.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use parking_lot::RwLock;

#[derive(Debug, Default)]
pub struct SessionInfo {
    settings: RwLock<BTreeMap<String, String>>,
    user: RwLock<String>,
    backend_pid: AtomicI32,
    /// Counts changes of the settings and the user (see `generation`).
    generation: AtomicU64,
}

impl SessionInfo {
    pub fn new(user: &str) -> Self {
        SessionInfo {
            settings: RwLock::new(BTreeMap::new()),
            user: RwLock::new(user.to_owned()),
            backend_pid: AtomicI32::new(0),
            generation: AtomicU64::new(0),
        }
    }

    /// A setting's value by its lower-case name.
    pub fn setting(&self, name: &str) -> Option<String> {
        self.settings
            .read()
            .get(&name.to_ascii_lowercase())
            .cloned()
    }

    /// Every setting, by lower-case name.
    pub fn settings(&self) -> BTreeMap<String, String> {
        self.settings.read().clone()
    }

    pub fn set_setting(&self, name: &str, value: String) {
        self.settings
            .write()
            .insert(name.to_ascii_lowercase(), value);
        self.changed();
    }

    pub fn remove_setting(&self, name: &str) {
        self.settings.write().remove(&name.to_ascii_lowercase());
        self.changed();
    }

    /// A number that changes whenever a setting or the user does: what was
    /// planned under one generation may differ under another.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    pub fn user(&self) -> String {
        self.user.read().clone()
    }

    pub fn set_user(&self, user: &str) {
        *self.user.write() = user.to_owned();
        self.changed();
    }

    /// The process id the protocol announced in BackendKeyData.
    pub fn backend_pid(&self) -> i32 {
        self.backend_pid.load(Ordering::Relaxed)
    }

    pub fn set_backend_pid(&self, pid: i32) {
        self.backend_pid.store(pid, Ordering::Relaxed);
    }
}
