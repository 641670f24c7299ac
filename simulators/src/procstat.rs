//! CPU and load figures from `/proc`, best effort: the report says how much of the machine
//! the simulator took and how much the gateway got, so a figure measured on a shared
//! two-core machine can be judged.
//!
//! Everything here returns `None` where `/proc` is missing or unreadable (not Linux, another
//! user's process); the report then leaves the figure out.

use std::path::Path;

/// Clock ticks per second of `/proc/<pid>/stat` times. `USER_HZ` is 100 on every Linux
/// architecture that matters here (it is fixed by the ABI, not by the kernel's HZ).
pub const TICKS_PER_SEC: f64 = 100.0;

/// User + system CPU time of a process so far, in ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) … utime(11) stime(12).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Busy and total ticks of the whole machine (first line of `/proc/stat`).
pub fn machine_ticks() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    // idle and iowait are the 4th and 5th values.
    let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// The 1, 5 and 15 minute load averages.
pub fn loadavg() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// Cores the machine has.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The process listening on TCP `port` (IPv4 or IPv6): the gateway in front of which loadgen
/// runs.
pub fn listener_pid(port: u16) -> Option<u32> {
    socket_owner(|local, _, state| state == LISTEN && local == port)
}

/// The process at the other end of a TCP connection that came to our port `our_port` from
/// port `peer_port` on this machine: the gateway that binds to smsc. Its socket is the one
/// whose local port is `peer_port` and remote port `our_port` (ours is the other way round).
pub fn peer_pid(peer_port: u16, our_port: u16) -> Option<u32> {
    socket_owner(|local, remote, state| {
        state == ESTABLISHED && local == peer_port && remote == our_port
    })
}

/// `/proc/net/tcp` state of a listening socket.
const LISTEN: &str = "0A";
/// `/proc/net/tcp` state of a connected socket.
const ESTABLISHED: &str = "01";

/// The process holding a TCP socket (IPv4 or IPv6) for which `wanted(local port, remote
/// port, state)` holds: the socket's inode from `/proc/net/tcp*`, then the process holding
/// that inode among `/proc/*/fd`.
fn socket_owner(wanted: impl Fn(u16, u16, &str) -> bool) -> Option<u32> {
    let port = |addr: &str| {
        addr.rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
    };
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(remote), Some(state), Some(inode)) =
                (f.get(1), f.get(2), f.get(3), f.get(9))
            else {
                continue;
            };
            let (Some(local), Some(remote)) = (port(local), port(remote)) else {
                continue;
            };
            if wanted(local, remote, state) && *inode != "0" {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let procs = std::fs::read_dir("/proc").ok()?;
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(Path::new("/proc").join(pid.to_string()).join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path())
                && inodes.iter().any(|i| link.as_os_str() == i.as_str())
            {
                return Some(pid);
            }
        }
    }
    None
}

/// A snapshot to take before and after a run.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    /// Our CPU ticks.
    pub own: Option<u64>,
    /// The gateway's CPU ticks.
    pub gateway: Option<u64>,
    /// Machine busy and total ticks.
    pub machine: Option<(u64, u64)>,
    /// When it was taken.
    pub at: std::time::Instant,
}

impl Snapshot {
    /// Takes one, for the gateway `gateway_pid` if known.
    pub fn take(gateway_pid: Option<u32>) -> Snapshot {
        Snapshot {
            own: cpu_ticks(std::process::id()),
            gateway: gateway_pid.and_then(cpu_ticks),
            machine: machine_ticks(),
            at: std::time::Instant::now(),
        }
    }
}

/// Cores used between two snapshots: (ours, the gateway's, the whole machine's).
pub fn cores_used(a: &Snapshot, b: &Snapshot) -> (Option<f64>, Option<f64>, Option<f64>) {
    let wall = b.at.duration_since(a.at).as_secs_f64();
    if wall <= 0.0 {
        return (None, None, None);
    }
    let per =
        |x: Option<u64>, y: Option<u64>| Some(y?.saturating_sub(x?) as f64 / TICKS_PER_SEC / wall);
    let machine = match (a.machine, b.machine) {
        (Some((busy_a, total_a)), Some((busy_b, total_b))) if total_b > total_a => {
            Some((busy_b - busy_a) as f64 / (total_b - total_a) as f64 * cores() as f64)
        }
        _ => None,
    };
    (per(a.own, b.own), per(a.gateway, b.gateway), machine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_and_listener_are_found() {
        if !Path::new("/proc/self/stat").exists() {
            return;
        }
        assert!(cpu_ticks(std::process::id()).is_some());
        assert!(loadavg().is_some());
        assert!(machine_ticks().is_some());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(listener_pid(port), Some(std::process::id()));
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let peer_port = client.local_addr().unwrap().port();
        assert_eq!(accepted.peer_addr().unwrap().port(), peer_port);
        assert_eq!(peer_pid(peer_port, port), Some(std::process::id()));
        // Only a connection between those two ports counts.
        assert_eq!(peer_pid(port, port), None);
    }
}
