//! Kernel timestamps are CLOCK_MONOTONIC (`bpf_ktime_get_ns`); spans carry
//! wall-clock time. The offset between the two is taken once.

/// Converts monotonic nanoseconds to wall-clock microseconds since the epoch.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    offset_ns: i128,
}

fn clock_ns(id: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a timespec; both clocks always exist on Linux.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

impl WallClock {
    /// Measures the offset now.
    pub fn now() -> WallClock {
        let mono = clock_ns(libc::CLOCK_MONOTONIC);
        let real = clock_ns(libc::CLOCK_REALTIME);
        WallClock {
            offset_ns: real - mono,
        }
    }

    /// A clock whose wall time equals monotonic time (tests).
    pub fn identity() -> WallClock {
        WallClock { offset_ns: 0 }
    }

    pub fn to_wall_us(&self, mono_ns: u64) -> u64 {
        ((mono_ns as i128 + self.offset_ns).max(0) / 1000) as u64
    }

    /// The monotonic clock now, in the kernel's units.
    pub fn monotonic_ns() -> u64 {
        clock_ns(libc::CLOCK_MONOTONIC) as u64
    }
}
