//! CPU time of a process from `/proc/<pid>/stat`, so benchmarks can say
//! what the sink (or a client) cost. Linux only; `/proc` reports in
//! `USER_HZ` ticks, which the kernel ABI fixes at 100 per second.

use std::io;
use std::time::Duration;

const USER_HZ: u64 = 100;

/// User and system CPU time of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTime {
    /// Time in user mode.
    pub user: Duration,
    /// Time in the kernel.
    pub system: Duration,
}

impl CpuTime {
    /// User plus system time.
    pub fn total(&self) -> Duration {
        self.user + self.system
    }
}

/// CPU time of process `pid` (all its threads), or of this process.
pub fn cpu_time(pid: Option<u32>) -> io::Result<CpuTime> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    parse_stat(&std::fs::read_to_string(path)?)
}

/// Parses utime and stime (fields 14 and 15) out of a `stat` line. The
/// command name (field 2) is in parentheses and may hold spaces, so fields
/// are counted from the last `)`.
fn parse_stat(s: &str) -> io::Result<CpuTime> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc stat format");
    let rest = &s[s.rfind(')').ok_or_else(bad)? + 1..];
    let mut f = rest.split_whitespace();
    // After the name: state is field 3, so utime (14) is the 12th here.
    let utime: u64 = f.nth(11).ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let stime: u64 = f.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let tick = |t: u64| Duration::from_millis(t * 1000 / USER_HZ);
    Ok(CpuTime {
        user: tick(utime),
        system: tick(stime),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_spaces_in_the_name() {
        let line = "1234 (a b) c) S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 1 0 100 0 0";
        let t = parse_stat(line).unwrap();
        assert_eq!(t.user, Duration::from_millis(2500));
        assert_eq!(t.system, Duration::from_millis(750));
        assert!(parse_stat("garbage").is_err());
    }

    #[test]
    fn reads_own_process() {
        assert!(cpu_time(None).is_ok());
    }
}
