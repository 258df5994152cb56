//! What the Go probes need to know about a Go executable: its Go version,
//! where a function's entry and `RET` instructions are, and where
//! `runtime.g` keeps the goroutine id.
//!
//! Only Go 1.18 and later (register ABI, version inline in `.go.buildinfo`)
//! on x86-64 are probed, and only binaries that keep their symbol table: a
//! stripped binary (`-ldflags=-s`) has no `runtime.*` symbols to attach to.
//!
//! The struct offsets the probes read ([`GoLayout`]: the goid in
//! `runtime.g`, a channel's wait queues, a waiting goroutine in `sudog`)
//! come from the binary's DWARF, which Go writes unless linked with
//! `-ldflags=-w`. Without DWARF they come from a table of the Go versions
//! whose layout is known (1.18 to 1.22), confirmed by finding
//! `runtime.newproc1`'s store of the new goroutine's id at the goid offset;
//! other versions without DWARF are refused rather than guessed.
//!
//! Everything here is pure: the bytes of an ELF file in, offsets out.

use iced_x86::{Decoder, DecoderOptions, Mnemonic, OpKind, Register};
use object::{Object, ObjectSection, ObjectSymbol};
use std::borrow::Cow;
use std::io::Read;

/// Offsets in the runtime's structs that the probes read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoLayout {
    /// `runtime.g.goid`.
    pub goid: u64,
    /// `runtime.hchan.recvq` (a `waitq`, whose `first *sudog` comes first).
    pub hchan_recvq: u64,
    /// `runtime.hchan.sendq`.
    pub hchan_sendq: u64,
    /// `runtime.sudog.g`.
    pub sudog_g: u64,
    /// Where a thread keeps its current g, from the thread pointer (the
    /// FS base on amd64): -8 in Go's own TLS block.
    pub tls_g: i64,
}

impl GoLayout {
    fn fits_cookie(&self) -> bool {
        self.goid <= 0xffff
            && self.hchan_recvq <= 0xff
            && self.hchan_sendq <= 0xff
            && self.sudog_g <= 0xff
            && i16::try_from(self.tls_g).is_ok()
    }

    /// The offsets packed into a probe cookie (see `go_off_*` in the BPF C).
    pub fn cookie(&self) -> u64 {
        self.goid
            | self.hchan_recvq << 16
            | self.hchan_sendq << 24
            | self.sudog_g << 32
            | u64::from(self.tls_g as i16 as u16) << 48
    }
}

/// The layout of Go 1.18 to 1.22 on amd64: `goid` after stack,
/// stackguard0/1, _panic, _defer, m, sched, syscallsp/pc, stktopsp, param,
/// atomicstatus, stackLock; `hchan` is qcount, dataqsiz, buf, elemsize,
/// closed, elemtype, sendx, recvx, recvq, sendq, lock; `sudog.g` first.
pub const GO_1_18_TO_1_22: GoLayout = GoLayout {
    goid: 152,
    hchan_recvq: 56,
    hchan_sendq: 72,
    sudog_g: 0,
    tls_g: -8,
};

/// Probe sites of one function, as file offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSites {
    pub entry: u64,
    pub returns: Vec<u64>,
}

/// Why a binary gets no Go probes.
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
    #[error("no symbol {0} (stripped, or not linked in)")]
    NoSymbol(&'static str),
    #[error("{0}'s code is not in the file")]
    NoCode(&'static str),
    #[error("runtime.g's goid offset is unknown for {0} without DWARF")]
    GoidOffset(String),
}

/// Where [`GoElf::layout`] found the offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSource {
    /// `runtime.g`'s DWARF description.
    Dwarf,
    /// The version table, confirmed in `runtime.newproc1`'s code.
    VersionTable,
}

/// A parsed Go executable.
pub struct GoElf<'a> {
    file: object::File<'a>,
    /// `go1.19.8`.
    pub version: String,
}

/// The Go version from `.go.buildinfo` (Go 1.18+ stores it inline: a
/// 32-byte header, flag bit 2, then a varint-prefixed string).
pub(crate) fn go_version(buildinfo: &[u8]) -> Option<String> {
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
pub(crate) fn minor(version: &str) -> Option<u32> {
    let rest = version.strip_prefix("go1.")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl<'a> GoElf<'a> {
    /// Parses `data` as a Go 1.18+ x86-64 executable.
    pub fn parse(data: &'a [u8]) -> Result<GoElf<'a>, GoElfError> {
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
        Ok(GoElf { file, version })
    }

    /// The machine code of the function `name`, and its file offset.
    fn code(&self, name: &'static str) -> Result<(&'a [u8], u64), GoElfError> {
        let sym = self
            .file
            .symbols()
            .find(|s| s.name() == Ok(name))
            .ok_or(GoElfError::NoSymbol(name))?;
        let section = sym
            .section_index()
            .and_then(|i| self.file.section_by_index(i).ok())
            .ok_or(GoElfError::NoCode(name))?;
        let (sec_off, _) = section.file_range().ok_or(GoElfError::NoCode(name))?;
        let start = sym
            .address()
            .checked_sub(section.address())
            .ok_or(GoElfError::NoCode(name))?;
        let code = section
            .data()
            .ok()
            .and_then(|d| d.get(start as usize..start.checked_add(sym.size())? as usize))
            .filter(|c| !c.is_empty())
            .ok_or(GoElfError::NoCode(name))?;
        Ok((code, sec_off + start))
    }

    /// The file offset of `name`'s first instruction.
    pub fn entry(&self, name: &'static str) -> Result<u64, GoElfError> {
        self.code(name).map(|(_, off)| off)
    }

    /// Where to probe `name` on entry: its first instruction, or, when it
    /// opens with Go's stack bound check (`cmp rsp, [r14+16]` or `lea r12,
    /// [rsp-N]; cmp r12, [r14+16]`, then `jbe` to morestack), that `jbe`.
    /// The kernel emulates a conditional jump but has to single-step a
    /// memory compare out of line: a second trap per hit, which on a
    /// virtual machine costs microseconds. Arguments and R14 are the same
    /// at both places; if the check fails, the function is entered again
    /// after the stack grows and the probe fires twice (the programs are
    /// idempotent).
    pub fn probe_entry(&self, name: &'static str) -> Result<u64, GoElfError> {
        let (code, entry) = self.code(name)?;
        let decoder = Decoder::with_ip(64, code, 0, DecoderOptions::NONE);
        for instr in decoder.into_iter().take(3) {
            match instr.mnemonic() {
                Mnemonic::Lea | Mnemonic::Cmp => continue,
                Mnemonic::Jbe if instr.ip() > 0 => return Ok(entry + instr.ip()),
                _ => break,
            }
        }
        Ok(entry)
    }

    /// The entry and every `RET` of `name`, found by decoding its code.
    pub fn function(&self, name: &'static str) -> Result<FunctionSites, GoElfError> {
        let (code, entry) = self.code(name)?;
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
    }

    /// `runtime.g.goid`'s offset, and where it was found.
    pub fn goid_offset(&self) -> Result<(u64, OffsetSource), GoElfError> {
        self.layout().map(|(l, from)| (l.goid, from))
    }

    /// The runtime struct offsets the probes read, and where they were
    /// found: DWARF, or the version table confirmed in the code. The TLS
    /// slot of g comes from the code in both cases ([`GoElf::tls_g`]).
    pub fn layout(&self) -> Result<(GoLayout, OffsetSource), GoElfError> {
        let tls_g = self
            .tls_g()
            .ok_or(GoElfError::NoCode("runtime.goexit1.abi0"))?;
        if let Some(l) = self.dwarf_layout(tls_g) {
            return Ok((l, OffsetSource::Dwarf));
        }
        let known = minor(&self.version).is_some_and(|m| (18..=22).contains(&m));
        if known && self.stores_at("runtime.newproc1", GO_1_18_TO_1_22.goid) {
            let l = GoLayout {
                tls_g,
                ..GO_1_18_TO_1_22
            };
            return Ok((l, OffsetSource::VersionTable));
        }
        Err(GoElfError::GoidOffset(self.version.clone()))
    }

    /// The offset of g's TLS slot from the thread pointer: where the ABI0
    /// wrapper of `runtime.goexit1` (every Go binary has one: the assembly
    /// `runtime.goexit` calls it) loads R14 from, `mov r14, fs:[disp]`.
    /// -8 in internally and externally (cgo) linked binaries alike, as
    /// their `PT_TLS` segments and `runtime.tlsg` agree.
    pub fn tls_g(&self) -> Option<i64> {
        let (code, _) = self.code("runtime.goexit1.abi0").ok()?;
        Decoder::with_ip(64, code, 0, DecoderOptions::NONE)
            .into_iter()
            .find(|i| {
                i.mnemonic() == Mnemonic::Mov
                    && i.op0_kind() == OpKind::Register
                    && i.op0_register() == Register::R14
                    && i.op1_kind() == OpKind::Memory
                    && i.segment_prefix() == Register::FS
                    && i.memory_base() == Register::None
                    && i.memory_index() == Register::None
            })
            .map(|i| i.memory_displacement64() as i64)
    }

    /// The file offset of the first `call callee` in `caller` that follows
    /// a `call after`.
    pub fn call_after(
        &self,
        caller: &'static str,
        after: &'static str,
        callee: &'static str,
    ) -> Result<u64, GoElfError> {
        let addr = |name: &'static str| -> Result<u64, GoElfError> {
            self.file
                .symbols()
                .find(|s| s.name() == Ok(name))
                .map(|s| s.address())
                .ok_or(GoElfError::NoSymbol(name))
        };
        let (after_at, callee_at) = (addr(after)?, addr(callee)?);
        let start = addr(caller)?;
        let (code, entry) = self.code(caller)?;
        let mut seen = false;
        for i in Decoder::with_ip(64, code, start, DecoderOptions::NONE) {
            if i.mnemonic() != Mnemonic::Call || i.op0_kind() != OpKind::NearBranch64 {
                continue;
            }
            let target = i.near_branch64();
            if target == after_at {
                seen = true;
            } else if seen && target == callee_at {
                return Ok(entry + (i.ip() - start));
            }
        }
        Err(GoElfError::NoCode(caller))
    }

    /// Whether `name` stores a 64-bit register at `[reg + disp]`.
    fn stores_at(&self, name: &'static str, disp: u64) -> bool {
        let Ok((code, _)) = self.code(name) else {
            return false;
        };
        Decoder::with_ip(64, code, 0, DecoderOptions::NONE)
            .into_iter()
            .any(|i| {
                i.mnemonic() == Mnemonic::Mov
                    && i.op0_kind() == OpKind::Memory
                    && i.memory_base() != Register::None
                    && i.memory_base() != Register::RIP
                    && i.memory_index() == Register::None
                    && i.memory_displacement64() == disp
                    && i.op1_kind() == OpKind::Register
                    && (Register::RAX as u32..=Register::R15 as u32)
                        .contains(&(i.op1_register() as u32))
            })
    }

    /// A section's bytes, decompressed if the linker compressed them (Go
    /// does: zlib, `SHF_COMPRESSED` or GNU `.zdebug_*`).
    fn section_bytes(&self, name: &str) -> Option<Cow<'a, [u8]>> {
        let section = self.file.section_by_name(name)?;
        let c = section.compressed_data().ok()?;
        match c.format {
            object::CompressionFormat::None => Some(Cow::Borrowed(c.data)),
            object::CompressionFormat::Zlib => {
                let size = usize::try_from(c.uncompressed_size).ok()?;
                // A corrupt header must not make us allocate gigabytes.
                if size > 1 << 30 {
                    return None;
                }
                let mut out = Vec::with_capacity(size);
                flate2::read::ZlibDecoder::new(c.data)
                    .take(size as u64)
                    .read_to_end(&mut out)
                    .ok()?;
                Some(Cow::Owned(out))
            }
            _ => None,
        }
    }

    /// The offsets of [`GoLayout`] from the DWARF description of the
    /// runtime's types (top-level entries of each unit), if it has them all
    /// and the fields assumed first are first.
    fn dwarf_layout(&self, tls_g: i64) -> Option<GoLayout> {
        let m = self.dwarf_members(&[
            ("runtime.g", "goid"),
            ("runtime.hchan", "qcount"),
            ("runtime.hchan", "recvq"),
            ("runtime.hchan", "sendq"),
            ("runtime.waitq", "first"),
            ("runtime.sudog", "g"),
            ("runtime.scase", "c"),
            ("runtime.scase", "elem"),
        ]);
        let [goid, qcount, recvq, sendq, first, sudog_g, c, elem] = m[..] else {
            return None;
        };
        let l = GoLayout {
            goid: goid?,
            hchan_recvq: recvq?,
            hchan_sendq: sendq?,
            sudog_g: sudog_g?,
            tls_g,
        };
        let assumed = qcount? == 0 && first? == 0 && c? == 0 && elem? == 8;
        (assumed && l.fits_cookie()).then_some(l)
    }

    /// `DW_AT_data_member_location` of each (structure type, member).
    fn dwarf_members(&self, wanted: &[(&str, &str)]) -> Vec<Option<u64>> {
        use gimli::{AttributeValue, EndianSlice, RunTimeEndian};
        let mut found = vec![None; wanted.len()];
        let endian = if self.file.is_little_endian() {
            RunTimeEndian::Little
        } else {
            RunTimeEndian::Big
        };
        let Ok(sections) = gimli::DwarfSections::load(|id| -> Result<Cow<'a, [u8]>, ()> {
            Ok(self.section_bytes(id.name()).unwrap_or(Cow::Borrowed(&[])))
        }) else {
            return found;
        };
        let dwarf = sections.borrow(|s| EndianSlice::new(s, endian));
        let mut units = dwarf.units();
        while let Ok(Some(header)) = units.next() {
            let Ok(unit) = dwarf.unit(header) else {
                continue;
            };
            let Ok(mut tree) = unit.entries_tree(None) else {
                continue;
            };
            let Ok(root) = tree.root() else {
                continue;
            };
            let mut types = root.children();
            while let Ok(Some(node)) = types.next() {
                let e = node.entry();
                if e.tag() != gimli::DW_TAG_structure_type {
                    continue;
                }
                let Some(name) = attr_str(&dwarf, &unit, e, gimli::DW_AT_name) else {
                    continue;
                };
                if !wanted.iter().any(|(t, _)| *t == name) {
                    continue;
                }
                let mut members = node.children();
                while let Ok(Some(m)) = members.next() {
                    let me = m.entry();
                    if me.tag() != gimli::DW_TAG_member {
                        continue;
                    }
                    let Some(member) = attr_str(&dwarf, &unit, me, gimli::DW_AT_name) else {
                        continue;
                    };
                    let Some(i) = wanted.iter().position(|w| *w == (name.as_str(), &*member))
                    else {
                        continue;
                    };
                    found[i] = match me.attr_value(gimli::DW_AT_data_member_location) {
                        Ok(Some(AttributeValue::Udata(v))) => Some(v),
                        Ok(Some(AttributeValue::Data1(v))) => Some(v.into()),
                        Ok(Some(AttributeValue::Data2(v))) => Some(v.into()),
                        Ok(Some(AttributeValue::Data4(v))) => Some(v.into()),
                        Ok(Some(AttributeValue::Data8(v))) => Some(v),
                        Ok(Some(AttributeValue::Sdata(v))) => u64::try_from(v).ok(),
                        _ => None,
                    };
                }
                if found.iter().all(Option::is_some) {
                    return found;
                }
            }
        }
        found
    }
}

fn attr_str<R: gimli::Reader>(
    dwarf: &gimli::Dwarf<R>,
    unit: &gimli::Unit<R>,
    e: &gimli::DebuggingInformationEntry<R>,
    at: gimli::DwAt,
) -> Option<String> {
    let v = e.attr_value(at).ok()??;
    let s = dwarf.attr_string(unit, v).ok()?;
    s.to_string_lossy().ok().map(|c| c.into_owned())
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
    fn cookie_packs_the_offsets_as_the_bpf_side_unpacks_them() {
        let c = GO_1_18_TO_1_22.cookie();
        assert_eq!(c & 0xffff, 152, "goid");
        assert_eq!((c >> 16) & 0xff, 56, "hchan.recvq");
        assert_eq!((c >> 24) & 0xff, 72, "hchan.sendq");
        assert_eq!((c >> 32) & 0xff, 0, "sudog.g");
        assert_eq!((c >> 48) as u16 as i16, -8, "g's TLS slot");
        assert!(GO_1_18_TO_1_22.fits_cookie());
        let far = GoLayout {
            tls_g: -40000,
            ..GO_1_18_TO_1_22
        };
        assert!(!far.fits_cookie());
    }

    #[test]
    fn non_go_files_are_refused() {
        assert!(matches!(
            GoElf::parse(b"not an elf"),
            Err(GoElfError::NotElf)
        ));
        // This test binary itself: ELF, x86-64 here, but not Go.
        if let Ok(me) = std::fs::read("/proc/self/exe") {
            assert!(matches!(
                GoElf::parse(&me),
                Err(GoElfError::NotGo | GoElfError::Arch)
            ));
        }
    }
}
