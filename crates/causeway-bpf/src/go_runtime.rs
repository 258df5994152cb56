//! Where to put the Go runtime probes that make goroutines pseudo-threads
//! (what they do: "Go goroutines" in `bpf/causeway.bpf.c`).
//!
//! - a go statement: `runtime.newproc1`'s entry (the creator is its second
//!   argument), then the `call runtime.runqput` that follows `call
//!   runtime.newproc1` in `runtime.newproc`'s closure (the new g is the
//!   call's second argument); where that call is not found, each `RET` of
//!   newproc1 (no uretprobes in Go, see [`crate::go_tls`]).
//! - `runtime.chansend`, `runtime.chanrecv`, `runtime.selectgo`: values
//!   passed over channels.
//! - `runtime.goexit1`: a goroutine ends.
//!
//! Which goroutine makes a socket syscall is read from the thread's TLS at
//! the syscall, not tracked at each goroutine switch (`runtime.execute`):
//! a uprobe hit costs about a microsecond here, a switch a tenth of that.
//!
//! Their register arguments are the same from Go 1.18 to 1.22. Entry probes
//! sit on the `jbe` of the stack bound check ([`GoElf::probe_entry`]): one
//! trap per hit instead of two. Binaries without these symbols (stripped)
//! are not probed; which binaries qualify: [`crate::go_elf`].
//!
//! [`analyse`] is pure: the bytes of an ELF file in, offsets out.

use crate::go_elf::{GoElf, GoElfError, GoLayout, OffsetSource};

/// Where a go statement's new goroutine is seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpawnSite {
    /// The `call runtime.runqput` after newproc1 (new g in RBX).
    Runqput(u64),
    /// runtime.newproc1's RETs (new g in RAX).
    Returns(Vec<u64>),
}

/// Where the runtime probes of one Go binary go, as file offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoRuntimeSites {
    /// `go1.19.8`.
    pub version: String,
    /// runtime.newproc1's entry.
    pub newproc1: u64,
    /// Where the new goroutine is seen.
    pub spawn: SpawnSite,
    pub chansend: Option<u64>,
    pub chanrecv: Option<u64>,
    pub selectgo: Option<u64>,
    pub goexit1: u64,
    /// The struct offsets, passed to the probes as their cookie.
    pub layout: GoLayout,
    pub layout_from: OffsetSource,
}

/// Finds the runtime probe sites in a parsed Go binary.
pub fn sites(elf: &GoElf<'_>) -> Result<GoRuntimeSites, GoElfError> {
    let newproc1 = elf.probe_entry("runtime.newproc1")?;
    let spawn = match elf.call_after(
        "runtime.newproc.func1",
        "runtime.newproc1",
        "runtime.runqput",
    ) {
        Ok(at) => SpawnSite::Runqput(at),
        Err(_) => SpawnSite::Returns(elf.function("runtime.newproc1")?.returns),
    };
    let chansend = elf.probe_entry("runtime.chansend").ok();
    let chanrecv = elf.probe_entry("runtime.chanrecv").ok();
    let selectgo = elf.probe_entry("runtime.selectgo").ok();
    let goexit1 = elf.probe_entry("runtime.goexit1")?;
    let (layout, layout_from) = elf.layout()?;
    Ok(GoRuntimeSites {
        version: elf.version.clone(),
        newproc1,
        spawn,
        chansend,
        chanrecv,
        selectgo,
        goexit1,
        layout,
        layout_from,
    })
}

/// Finds the runtime probe sites in the ELF file `data`.
pub fn analyse(data: &[u8]) -> Result<GoRuntimeSites, GoElfError> {
    sites(&GoElf::parse(data)?)
}
