//! Where to put the Go crypto/tls probes in a Go binary.
//!
//! The entry probes go at the start of `crypto/tls.(*Conn).Read` and
//! `.Write`; the return probes at each of their `RET` instructions, found by
//! decoding the functions' machine code: a uretprobe would replace the
//! return address on the goroutine's stack, which Go's stack copying and
//! tracebacks do not survive. Only Go 1.18 and later (register ABI, version
//! inline in `.go.buildinfo`) on x86-64 are probed, and only binaries that
//! keep their symbol table.
//!
//! [`analyse`] is pure: the bytes of an ELF file in, offsets out.

use iced_x86::{Decoder, DecoderOptions, Mnemonic};
use object::{Object, ObjectSection, ObjectSymbol};

/// Offset of `goid` in `runtime.g` on amd64, Go 1.18 to 1.22 (after stack,
/// stackguard0/1, _panic, _defer, m, sched, syscallsp/pc, stktopsp, param,
/// atomicstatus, stackLock).
const GOID_OFFSET: u64 = 152;

/// Probe sites of one function, as file offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSites {
    pub entry: u64,
    pub returns: Vec<u64>,
}

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

/// Why a binary gets no Go TLS probes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GoElfError {
    #[error("not an ELF file")]
    NotElf,
    #[error("not x86-64")]
    Arch,
    #[error("not a Go binary")]
    NotGo,
    #[error("Go {0} predates the register ABI this probe reads")]
    OldGo(String),
    #[error("no symbol {0} (stripped, or no crypto/tls)")]
    NoSymbol(&'static str),
    #[error("{0}'s code is not in the file")]
    NoCode(&'static str),
}

const READ: &str = "crypto/tls.(*Conn).Read";
const WRITE: &str = "crypto/tls.(*Conn).Write";

/// The Go version from `.go.buildinfo` (Go 1.18+ stores it inline: a
/// 32-byte header, flag bit 2, then a varint-prefixed string).
fn go_version(buildinfo: &[u8]) -> Option<String> {
    let header = buildinfo.get(..32)?;
    if &header[..14] != b"\xff Go buildinf:" {
        return None;
    }
    if header[15] & 2 == 0 {
        return Some("go1.17-or-older".to_owned());
    }
    let rest = &buildinfo[32..];
    let (len, used) = varint(rest)?;
    let s = rest.get(used..used.checked_add(len as usize)?)?;
    std::str::from_utf8(s).ok().map(str::to_owned)
}

fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// `go1.N...` → N.
fn minor(version: &str) -> Option<u32> {
    let rest = version.strip_prefix("go1.")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Finds the probe sites in the ELF file `data`.
pub fn analyse(data: &[u8]) -> Result<GoTlsSites, GoElfError> {
    let file = object::File::parse(data).map_err(|_| GoElfError::NotElf)?;
    if file.architecture() != object::Architecture::X86_64 {
        return Err(GoElfError::Arch);
    }
    let buildinfo = file
        .section_by_name(".go.buildinfo")
        .and_then(|s| s.data().ok())
        .ok_or(GoElfError::NotGo)?;
    let version = go_version(buildinfo).ok_or(GoElfError::NotGo)?;
    if minor(&version).is_none_or(|m| m < 18) {
        return Err(GoElfError::OldGo(version));
    }
    let sites = |name: &'static str| -> Result<FunctionSites, GoElfError> {
        let sym = file
            .symbols()
            .find(|s| s.name() == Ok(name))
            .ok_or(GoElfError::NoSymbol(name))?;
        let section = sym
            .section_index()
            .and_then(|i| file.section_by_index(i).ok())
            .ok_or(GoElfError::NoCode(name))?;
        let (sec_off, _) = section.file_range().ok_or(GoElfError::NoCode(name))?;
        let start = sym.address() - section.address();
        let code = section
            .data()
            .ok()
            .and_then(|d| d.get(start as usize..(start + sym.size()) as usize))
            .ok_or(GoElfError::NoCode(name))?;
        let entry = sec_off + start;
        let mut decoder = Decoder::with_ip(64, code, 0, DecoderOptions::NONE);
        let mut returns = Vec::new();
        for instr in &mut decoder {
            if instr.mnemonic() == Mnemonic::Ret {
                returns.push(entry + instr.ip());
            }
        }
        if returns.is_empty() {
            return Err(GoElfError::NoCode(name));
        }
        Ok(FunctionSites { entry, returns })
    };
    Ok(GoTlsSites {
        read: sites(READ)?,
        write: sites(WRITE)?,
        version,
        goid_offset: GOID_OFFSET,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let mut bi = b"\xff Go buildinf:\x08\x02".to_vec();
        bi.resize(32, 0);
        bi.push(8);
        bi.extend_from_slice(b"go1.19.8");
        assert_eq!(go_version(&bi).as_deref(), Some("go1.19.8"));
        assert_eq!(minor("go1.19.8"), Some(19));
        assert_eq!(minor("go1.22rc1"), Some(22));
        assert_eq!(minor("devel"), None);
        assert_eq!(go_version(b"short"), None);
        bi[15] = 0;
        assert_eq!(go_version(&bi).as_deref(), Some("go1.17-or-older"));
    }

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
