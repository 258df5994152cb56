//! Attaching the OpenSSL uprobes to every libssl on the host.
//!
//! A uprobe hangs off a file (its inode), so one attachment per library file
//! covers every process that maps it, those already running and those that
//! start later. Libraries are found at the usual Debian paths and in the
//! memory maps of running processes (through `/proc/PID/root`, so libraries
//! inside containers count too); [`TlsProbes::scan`] runs again from time to
//! time to pick up libraries that appeared since.

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
}

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
    /// Attaches to every libssl not yet attached; returns how many were new.
    pub fn scan(&mut self, progs: &SslPrograms<'_>) -> usize {
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
