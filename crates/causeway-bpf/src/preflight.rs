//! Checks that must pass before loading, so a missing prerequisite fails at
//! once with a message that names it, instead of an opaque libbpf error.

use std::path::Path;

const BTF: &str = "/sys/kernel/btf/vmlinux";
const TRACEFS: &str = "/sys/kernel/tracing";
const SYSCALL_EVENTS: &str = "/sys/kernel/tracing/events/syscalls";

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "Causeway needs root: loading eBPF programs and reading other processes' \
         socket buffers requires CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN (run it with sudo)"
    )]
    NotRoot,
    #[error(
        "this kernel has no BTF ({BTF} is missing): Causeway's probes need a kernel \
         built with CONFIG_DEBUG_INFO_BTF=y to find socket fields (CO-RE)"
    )]
    NoBtf,
    #[error(
        "syscall tracepoints are not available ({SYSCALL_EVENTS} is missing) and \
         mounting tracefs on {TRACEFS} failed: {0}; mount it with \
         `mount -t tracefs nodev {TRACEFS}` or use a kernel with CONFIG_FTRACE_SYSCALLS=y"
    )]
    NoTracefs(String),
}

/// Verifies root, BTF and syscall tracepoints, mounting tracefs if needed.
pub fn preflight() -> Result<(), PreflightError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(PreflightError::NotRoot);
    }
    if !Path::new(BTF).exists() {
        return Err(PreflightError::NoBtf);
    }
    if !Path::new(SYSCALL_EVENTS).exists() {
        mount_tracefs().map_err(PreflightError::NoTracefs)?;
        if !Path::new(SYSCALL_EVENTS).exists() {
            return Err(PreflightError::NoTracefs(
                "tracefs is mounted but has no syscalls events".into(),
            ));
        }
    }
    // Ring buffers and maps are charged to the memory cgroup on current
    // kernels; older ones count them against RLIMIT_MEMLOCK, so lift it.
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: a valid pointer to an initialised rlimit. Failure is harmless
    // on kernels that do not use the limit for BPF.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
    Ok(())
}

fn mount_tracefs() -> Result<(), String> {
    let c = |s: &str| std::ffi::CString::new(s).map_err(|e| e.to_string());
    let (src, target, fstype) = (c("nodev")?, c(TRACEFS)?, c("tracefs")?);
    // SAFETY: NUL-terminated strings that outlive the call; null data is allowed.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().to_string())
    }
}
