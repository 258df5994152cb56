//! What the kernel reports about one socket syscall, after decoding.
//!
//! Events borrow their payload from the buffer they were decoded from (the
//! ring buffer record), so the hot path copies no payload bytes.

use serde::Serialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Which way bytes moved, seen from the traced process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The process received bytes (read, recvfrom, ...).
    Ingress,
    /// The process sent bytes (write, sendto, ...).
    Egress,
}

/// The transport of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum L4Protocol {
    Tcp,
    Udp,
}

impl L4Protocol {
    /// The number stored: the IP protocol number.
    pub fn code(self) -> u32 {
        match self {
            L4Protocol::Tcp => 6,
            L4Protocol::Udp => 17,
        }
    }

    pub fn from_code(code: u32) -> Option<L4Protocol> {
        match code {
            6 => Some(L4Protocol::Tcp),
            17 => Some(L4Protocol::Udp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            L4Protocol::Tcp => "tcp",
            L4Protocol::Udp => "udp",
        }
    }
}

/// How the socket came to be, as seen by its lifecycle syscalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SocketRole {
    /// Opened before the agent started, or by a path the agent does not hook.
    #[default]
    Unknown,
    /// The process called `connect` on it.
    Client,
    /// The process got it from `accept`/`accept4`.
    Server,
}

/// The syscall that moved the bytes (the paper's ten, plus `sendfile`, which
/// servers such as nginx use for response bodies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Syscall {
    Read,
    Write,
    Readv,
    Writev,
    Sendto,
    Recvfrom,
    Sendmsg,
    Recvmsg,
    Sendmmsg,
    Recvmmsg,
    Sendfile,
    /// OpenSSL's `SSL_read`/`SSL_read_ex` (plaintext, seen by a uprobe).
    SslRead,
    /// OpenSSL's `SSL_write`/`SSL_write_ex`.
    SslWrite,
}

impl Syscall {
    /// Decodes the kernel side's syscall number (the order above, from 0).
    pub fn from_u8(v: u8) -> Option<Syscall> {
        use Syscall::*;
        const ALL: [Syscall; 13] = [
            Read, Write, Readv, Writev, Sendto, Recvfrom, Sendmsg, Recvmsg, Sendmmsg, Recvmmsg,
            Sendfile, SslRead, SslWrite,
        ];
        ALL.get(v as usize).copied()
    }
}

/// A thread's command name, as the kernel keeps it (at most 16 bytes, NUL padded).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Comm([u8; 16]);

impl Comm {
    pub fn new(raw: [u8; 16]) -> Comm {
        Comm(raw)
    }

    pub fn from_str_lossy(s: &str) -> Comm {
        let mut raw = [0u8; 16];
        let n = s.len().min(15);
        raw[..n].copy_from_slice(&s.as_bytes()[..n]);
        Comm(raw)
    }

    /// The name up to the first NUL; invalid UTF-8 yields `"?"`.
    pub fn as_str(&self) -> &str {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        std::str::from_utf8(&self.0[..end]).unwrap_or("?")
    }
}

impl fmt::Debug for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The socket's endpoints from the traced process's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    pub l4: L4Protocol,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

impl Default for FiveTuple {
    fn default() -> Self {
        let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        FiveTuple {
            l4: L4Protocol::Tcp,
            local: any,
            remote: any,
        }
    }
}

/// One socket read or write: the paper's four groups of facts.
#[derive(Debug, Clone, Copy)]
pub struct DataEvent<'a> {
    // Program.
    pub pid: u32,
    pub tid: u32,
    pub comm: Comm,
    // Network.
    /// Unique for the agent's lifetime, never reused for another socket.
    pub socket_id: u64,
    pub role: SocketRole,
    pub tuple: FiveTuple,
    /// TCP sequence number of the first byte this syscall moved (0 for UDP).
    pub tcp_seq: u32,
    // Tracing.
    pub direction: Direction,
    /// Monotonic clock (ns) at syscall entry and exit.
    pub enter_ns: u64,
    pub exit_ns: u64,
    /// Shared by a thread's inbound message and the outbound messages it sends
    /// before its next inbound one (the paper's systrace_id).
    pub syscall_trace_id: u64,
    // Syscall.
    pub syscall: Syscall,
    pub fd: i32,
    /// Bytes the syscall moved (its return value, or one message's length).
    pub total_len: u32,
    /// The first bytes moved, up to the configured capture cap.
    pub payload: &'a [u8],
    /// Plaintext of a TLS connection, seen at the TLS library's boundary.
    pub is_tls: bool,
    /// The goroutine that moved the bytes (Go TLS); 0 when not known.
    pub coroutine_id: u64,
}

impl DataEvent<'_> {
    /// When the bytes were there: a read's data arrived by its exit (its entry
    /// may have waited for long), a write's started leaving at its entry.
    pub fn data_ns(&self) -> u64 {
        match self.direction {
            Direction::Ingress => self.exit_ns,
            Direction::Egress => self.enter_ns,
        }
    }
}

/// A socket that `connect` or `accept` produced.
#[derive(Debug, Clone, Copy)]
pub struct SocketOpen {
    pub pid: u32,
    pub tid: u32,
    pub comm: Comm,
    pub socket_id: u64,
    pub role: SocketRole,
    pub tuple: FiveTuple,
    pub fd: i32,
    pub ts_ns: u64,
}

/// A socket that its process closed.
#[derive(Debug, Clone, Copy)]
pub struct SocketClose {
    pub pid: u32,
    pub socket_id: u64,
    pub ts_ns: u64,
}

/// Everything the kernel side reports.
#[derive(Debug, Clone, Copy)]
pub enum SocketEvent<'a> {
    Data(DataEvent<'a>),
    Open(SocketOpen),
    Close(SocketClose),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comm_stops_at_nul() {
        let c = Comm::from_str_lossy("nginx");
        assert_eq!(c.as_str(), "nginx");
        let long = Comm::from_str_lossy("a-very-long-command-name");
        assert_eq!(long.as_str().len(), 15);
    }

    #[test]
    fn syscall_numbers_round_trip() {
        assert_eq!(Syscall::from_u8(0), Some(Syscall::Read));
        assert_eq!(Syscall::from_u8(10), Some(Syscall::Sendfile));
        assert_eq!(Syscall::from_u8(12), Some(Syscall::SslWrite));
        assert_eq!(Syscall::from_u8(13), None);
    }
}
