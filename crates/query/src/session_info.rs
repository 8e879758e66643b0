//! What a session's queries may ask about the session itself: its settings
//! (`current_setting`, `pg_settings`), its user and its backend process id.
//! The sql layer owns the rules for changing settings and writes them here;
//! the query layer only reads.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, Ordering};

use parking_lot::RwLock;

#[derive(Debug, Default)]
pub struct SessionInfo {
    settings: RwLock<BTreeMap<String, String>>,
    user: RwLock<String>,
    backend_pid: AtomicI32,
}

impl SessionInfo {
    pub fn new(user: &str) -> Self {
        SessionInfo {
            settings: RwLock::new(BTreeMap::new()),
            user: RwLock::new(user.to_owned()),
            backend_pid: AtomicI32::new(0),
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
    }

    pub fn remove_setting(&self, name: &str) {
        self.settings.write().remove(&name.to_ascii_lowercase());
    }

    pub fn user(&self) -> String {
        self.user.read().clone()
    }

    pub fn set_user(&self, user: &str) {
        *self.user.write() = user.to_owned();
    }

    /// The process id the protocol announced in BackendKeyData.
    pub fn backend_pid(&self) -> i32 {
        self.backend_pid.load(Ordering::Relaxed)
    }

    pub fn set_backend_pid(&self, pid: i32) {
        self.backend_pid.store(pid, Ordering::Relaxed);
    }
}
