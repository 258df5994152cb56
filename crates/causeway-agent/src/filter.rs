//! Which events the user asked for. Checked first, per event, so that
//! processes nobody watches cost no parsing.

use causeway_model::DataEvent;

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub pid: Option<u32>,
    pub comm: Option<String>,
    /// Matches either end of the socket.
    pub port: Option<u16>,
}

impl EventFilter {
    pub fn matches(&self, e: &DataEvent<'_>) -> bool {
        if self.pid.is_some_and(|p| p != e.pid) {
            return false;
        }
        if self
            .port
            .is_some_and(|p| e.tuple.local.port() != p && e.tuple.remote.port() != p)
        {
            return false;
        }
        if let Some(c) = &self.comm {
            if e.comm.as_str() != c {
                return false;
            }
        }
        true
    }
}
