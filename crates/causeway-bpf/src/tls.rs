//! Attaching the TLS uprobes: OpenSSL's on every libssl on the host, Go
//! crypto/tls's on every Go executable that runs, and with them the Go
//! runtime probes ([`crate::go_runtime`]) on the same executables.
//!
//! A uprobe hangs off a file (its inode), so one attachment per library file
//! covers every process that maps it, those already running and those that
//! start later. Libraries are found at the usual Debian paths and in the
//! memory maps of running processes (through `/proc/PID/root`, so libraries
//! inside containers count too); [`TlsProbes::scan`] runs again from time to
//! time to pick up libraries that appeared since. Go links crypto/tls and its
//! runtime into each executable, so every running executable is looked at
//! once (by inode) and probed where [`crate::go_tls::sites`] and
//! [`crate::go_runtime::sites`] find the functions. A Go program started
//! after a scan is probed at the next one; until then its goroutines are
//! traced as threads.

use libbpf_rs::{Link, ProgramMut, UprobeOpts};
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The programs to attach, by role.
pub(crate) struct SslPrograms<'a> {
    pub write: &'a ProgramMut<'a>,
    pub read: &'a ProgramMut<'a>,
    pub write_ex: &'a ProgramMut<'a>,
    pub read_ex: &'a ProgramMut<'a>,
    pub ret: &'a ProgramMut<'a>,
    pub go_read: &'a ProgramMut<'a>,
    pub go_write: &'a ProgramMut<'a>,
    pub go_ret: &'a ProgramMut<'a>,
    /// None: the Go runtime is not probed.
    pub go_runtime: Option<GoRuntimePrograms<'a>>,
}

/// The Go runtime programs, by probe site.
pub(crate) struct GoRuntimePrograms<'a> {
    pub newproc_runqput: &'a ProgramMut<'a>,
    pub newproc1: &'a ProgramMut<'a>,
    pub newproc1_ret: &'a ProgramMut<'a>,
    /// chansend, chanrecv, selectgo; None: channels are not followed.
    pub channels: Option<[&'a ProgramMut<'a>; 3]>,
    pub goexit1: &'a ProgramMut<'a>,
}

#[derive(Default)]
pub(crate) struct TlsProbes {
    /// (device, inode) of every library already handled.
    seen: HashSet<(u64, u64)>,
    links: Vec<Link>,
    /// Libraries attached, as first found.
    pub libraries: Vec<PathBuf>,
    /// Files named like libssl that could not be probed, and why.
    pub skipped: Vec<(PathBuf, String)>,
    /// (device, inode) of every executable already looked at.
    seen_exes: HashSet<(u64, u64)>,
    /// Go executables whose crypto/tls is probed, with their Go version.
    pub go_binaries: Vec<(PathBuf, String)>,
    /// Go executables whose runtime is probed, with their Go version.
    pub go_runtimes: Vec<(PathBuf, String)>,
}

/// Executables larger than this are not read for Go symbols.
const MAX_EXE: u64 = 1 << 30;

const DEFAULT_PATHS: [&str; 2] = [
    "/usr/lib/x86_64-linux-gnu/libssl.so.3",
    "/usr/lib/aarch64-linux-gnu/libssl.so.3",
];

/// Paths of libssl files: the default ones and those mapped by processes.
fn candidates() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = DEFAULT_PATHS.iter().map(PathBuf::from).collect();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let name = p.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
            continue;
        };
        for line in maps.lines() {
            let Some(path) = line.split_whitespace().nth(5) else {
                continue;
            };
            if path.contains("/libssl.so") {
                out.push(PathBuf::from(format!("/proc/{pid}/root{path}")));
            }
        }
    }
    out
}

impl TlsProbes {
    /// Attaches to every libssl and Go executable not yet attached; returns
    /// how many were new.
    pub fn scan(&mut self, progs: &SslPrograms<'_>) -> usize {
        self.scan_libssl(progs) + self.scan_go(progs)
    }

    fn scan_go(&mut self, progs: &SslPrograms<'_>) -> usize {
        let mut new = 0;
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return 0;
        };
        for p in procs.flatten() {
            let name = p.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            if pid == std::process::id().to_string() {
                continue;
            }
            let exe = PathBuf::from(format!("/proc/{pid}/exe"));
            let Ok(meta) = std::fs::metadata(&exe) else {
                continue;
            };
            if !self.seen_exes.insert((meta.dev(), meta.ino())) || meta.len() > MAX_EXE {
                continue;
            }
            let Ok(data) = std::fs::read(&exe) else {
                continue;
            };
            let Ok(elf) = crate::go_elf::GoElf::parse(&data) else {
                continue;
            };
            // The path through /proc stays valid only while that process
            // lives; the attachment, on the inode, outlives it.
            let real = std::fs::read_link(&exe).unwrap_or(exe.clone());
            if let Ok(sites) = crate::go_tls::sites(&elf) {
                match attach_go(progs, &exe, &sites) {
                    Ok(mut links) => {
                        self.links.append(&mut links);
                        self.go_binaries.push((real.clone(), sites.version));
                        new += 1;
                    }
                    Err(e) => self.skipped.push((exe.clone(), e.to_string())),
                }
            }
            let Some(rt) = &progs.go_runtime else {
                continue;
            };
            match crate::go_runtime::sites(&elf) {
                Ok(sites) => match attach_go_runtime(rt, &exe, &sites) {
                    Ok(mut links) => {
                        self.links.append(&mut links);
                        self.go_runtimes.push((real, sites.version));
                        new += 1;
                    }
                    Err(e) => self.skipped.push((exe, e.to_string())),
                },
                Err(e) => self.skipped.push((exe, e.to_string())),
            }
        }
        new
    }

    fn scan_libssl(&mut self, progs: &SslPrograms<'_>) -> usize {
        let mut new = 0;
        for path in candidates() {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !self.seen.insert((meta.dev(), meta.ino())) {
                continue;
            }
            match attach(progs, &path) {
                Ok(mut links) => {
                    self.links.append(&mut links);
                    self.libraries.push(path);
                    new += 1;
                }
                Err(e) => {
                    // Not an OpenSSL with these symbols (or not readable):
                    // nothing to trace in it; it is remembered as seen.
                    self.skipped.push((path, e.to_string()));
                }
            }
        }
        new
    }
}

fn uprobe(
    prog: &ProgramMut<'_>,
    path: &Path,
    func: &str,
    retprobe: bool,
) -> libbpf_rs::Result<Link> {
    prog.attach_uprobe_with_opts(
        -1,
        path,
        0,
        UprobeOpts {
            func_name: Some(func.to_owned()),
            retprobe,
            ..UprobeOpts::default()
        },
    )
}

fn at_offset(
    prog: &ProgramMut<'_>,
    path: &Path,
    offset: u64,
    cookie: u64,
) -> libbpf_rs::Result<Link> {
    prog.attach_uprobe_with_opts(
        -1,
        path,
        offset as usize,
        UprobeOpts {
            cookie,
            ..UprobeOpts::default()
        },
    )
}

fn attach_go(
    progs: &SslPrograms<'_>,
    path: &Path,
    sites: &crate::go_tls::GoTlsSites,
) -> libbpf_rs::Result<Vec<Link>> {
    let mut links = Vec::new();
    for (prog, f) in [(progs.go_read, &sites.read), (progs.go_write, &sites.write)] {
        links.push(at_offset(prog, path, f.entry, sites.goid_offset)?);
        for &ret in &f.returns {
            links.push(at_offset(progs.go_ret, path, ret, 0)?);
        }
    }
    Ok(links)
}

fn attach_go_runtime(
    progs: &GoRuntimePrograms<'_>,
    path: &Path,
    sites: &crate::go_runtime::GoRuntimeSites,
) -> libbpf_rs::Result<Vec<Link>> {
    use crate::go_runtime::SpawnSite;
    let cookie = sites.layout.cookie();
    let mut links = vec![at_offset(progs.newproc1, path, sites.newproc1, cookie)?];
    match &sites.spawn {
        SpawnSite::Runqput(at) => links.push(at_offset(progs.newproc_runqput, path, *at, cookie)?),
        SpawnSite::Returns(returns) => {
            for &ret in returns {
                links.push(at_offset(progs.newproc1_ret, path, ret, cookie)?);
            }
        }
    }
    links.push(at_offset(progs.goexit1, path, sites.goexit1, cookie)?);
    if let Some(ch) = progs.channels {
        for (prog, at) in ch
            .into_iter()
            .zip([sites.chansend, sites.chanrecv, sites.selectgo])
        {
            if let Some(at) = at {
                links.push(at_offset(prog, path, at, cookie)?);
            }
        }
    }
    Ok(links)
}

fn attach(progs: &SslPrograms<'_>, path: &Path) -> libbpf_rs::Result<Vec<Link>> {
    let mut links = Vec::new();
    // The plain calls must be there; the _ex ones came with OpenSSL 1.1.1.
    for (prog, func, required) in [
        (progs.write, "SSL_write", true),
        (progs.read, "SSL_read", true),
        (progs.write_ex, "SSL_write_ex", false),
        (progs.read_ex, "SSL_read_ex", false),
    ] {
        match uprobe(prog, path, func, false) {
            Ok(l) => links.push(l),
            Err(e) if required => return Err(e),
            Err(_) => continue,
        }
        links.push(uprobe(progs.ret, path, func, true)?);
    }
    Ok(links)
}
