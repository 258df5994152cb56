//! Where to put the Go crypto/tls probes in a Go binary.
//!
//! The entry probes go at the start of `crypto/tls.(*Conn).Read` and
//! `.Write`; the return probes at each of their `RET` instructions, found by
//! decoding the functions' machine code: a uretprobe would replace the
//! return address on the goroutine's stack, which Go's stack copying and
//! tracebacks do not survive. Which binaries qualify, and how the goid
//! offset is found: [`crate::go_elf`].
//!
//! [`analyse`] is pure: the bytes of an ELF file in, offsets out.

use crate::go_elf::GoElf;
pub use crate::go_elf::{FunctionSites, GoElfError};

/// Where the probes of one Go binary go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoTlsSites {
    /// `go1.19.8`.
    pub version: String,
    pub read: FunctionSites,
    pub write: FunctionSites,
    /// `runtime.g.goid`'s offset, passed to the probes as their cookie.
    pub goid_offset: u64,
}

const READ: &str = "crypto/tls.(*Conn).Read";
const WRITE: &str = "crypto/tls.(*Conn).Write";

/// Finds the probe sites in a parsed Go binary.
pub fn sites(elf: &GoElf<'_>) -> Result<GoTlsSites, GoElfError> {
    let read = elf.function(READ)?;
    let write = elf.function(WRITE)?;
    let (goid_offset, _) = elf.goid_offset()?;
    Ok(GoTlsSites {
        version: elf.version.clone(),
        read,
        write,
        goid_offset,
    })
}

/// Finds the probe sites in the ELF file `data`.
pub fn analyse(data: &[u8]) -> Result<GoTlsSites, GoElfError> {
    sites(&GoElf::parse(data)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_go_files_are_refused() {
        assert_eq!(analyse(b"not an elf"), Err(GoElfError::NotElf));
        // This test binary itself: ELF, x86-64 here, but not Go.
        if let Ok(me) = std::fs::read("/proc/self/exe") {
            assert!(matches!(
                analyse(&me),
                Err(GoElfError::NotGo | GoElfError::Arch)
            ));
        }
    }
}
