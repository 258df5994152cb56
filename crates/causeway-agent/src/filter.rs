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

#[cfg(test)]
mod tests {
    use super::*;
    use causeway_model::{Comm, Direction, FiveTuple, Syscall};

    fn event(pid: u32, comm: &str, local: u16, remote: u16) -> DataEvent<'static> {
        DataEvent {
            pid,
            tid: pid,
            comm: Comm::from_str_lossy(comm),
            socket_id: 1,
            role: Default::default(),
            tuple: FiveTuple {
                local: format!("127.0.0.1:{local}").parse().unwrap(),
                remote: format!("127.0.0.1:{remote}").parse().unwrap(),
                ..FiveTuple::default()
            },
            tcp_seq: 0,
            direction: Direction::Egress,
            enter_ns: 0,
            exit_ns: 0,
            syscall_trace_id: 0,
            syscall: Syscall::Write,
            fd: 3,
            total_len: 0,
            payload: b"",
            is_tls: false,
            coroutine_id: 0,
        }
    }

    #[test]
    fn every_field_must_match() {
        let all = EventFilter::default();
        assert!(all.matches(&event(1, "curl", 40000, 80)));
        let f = EventFilter {
            pid: Some(7),
            comm: Some("nginx".into()),
            port: Some(80),
        };
        assert!(f.matches(&event(7, "nginx", 80, 40000)));
        assert!(
            f.matches(&event(7, "nginx", 40000, 80)),
            "either end's port"
        );
        assert!(!f.matches(&event(8, "nginx", 80, 40000)));
        assert!(!f.matches(&event(7, "curl", 80, 40000)));
        assert!(!f.matches(&event(7, "nginx", 81, 40000)));
    }
}
