//! Test support: real `redis-server` processes on free loopback ports, each in a temp dir,
//! killed on drop; a 3-primary Redis Cluster; restarts for fault tests.
//!
//! Without `redis-server` on PATH a test prints that it is SKIPPED and returns, except under
//! `CI=true`, where a missing server is a failure (see `needs.rs`).

#![allow(dead_code)]

#[path = "needs.rs"]
pub mod needs;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The `redis-server` binary, or `None` after printing that the caller is skipped. Panics
/// under `CI=true` instead of skipping.
pub fn redis_server(test: &str) -> Option<PathBuf> {
    if binary_runs(Path::new("redis-server")) {
        return Some(PathBuf::from("redis-server"));
    }
    needs::missing(
        test,
        "redis-server is not on PATH (apt-get install redis-server)",
    );
    None
}

/// A server of Redis/Valkey 7.2 or later (it has `WAITAOF`): `$ICAZE_VALKEY_SERVER`, or
/// `valkey-server` on PATH. The Redis in Debian 12 is 7.0, so with neither the test is
/// skipped even in CI (a 7.0 server's refusal of WAITAOF is tested with redis-server); but
/// an `ICAZE_VALKEY_SERVER` that does not run is a mistake, and fails under `CI=true`.
pub fn waitaof_server(test: &str) -> Option<PathBuf> {
    if let Some(configured) = std::env::var_os("ICAZE_VALKEY_SERVER").map(PathBuf::from) {
        if binary_runs(&configured) {
            return Some(configured);
        }
        needs::missing(
            test,
            &format!("ICAZE_VALKEY_SERVER={} does not run", configured.display()),
        );
        return None;
    }
    let on_path = PathBuf::from("valkey-server");
    if binary_runs(&on_path) {
        return Some(on_path);
    }
    eprintln!(
        "SKIPPED {test}: no Redis/Valkey 7.2+ server (set ICAZE_VALKEY_SERVER or put valkey-server on PATH)"
    );
    None
}

fn binary_runs(binary: &Path) -> bool {
    Command::new(binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// One `redis-server` child on 127.0.0.1, with `--appendonly yes --appendfsync always` in
/// its own temp dir. Killed (SIGKILL) on drop.
pub struct RedisServer {
    pub port: u16,
    binary: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// A standalone server, or `None` if the test is skipped (see [`redis_server`]).
    pub fn start(test: &str) -> Option<RedisServer> {
        let binary = redis_server(test)?;
        Some(Self::start_binary(binary, &[]))
    }

    /// A server from `binary` with `extra` arguments after the defaults.
    pub fn start_binary(binary: PathBuf, extra: &[&str]) -> RedisServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--daemonize",
            "no",
            "--dir",
            dir.path().to_str().expect("utf-8 temp dir"),
            "--logfile",
            "redis.log",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut server = RedisServer {
            port,
            binary,
            args,
            child: None,
            dir,
        };
        server.start_again();
        server
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The data directory (AOF, nodes.conf, redis.log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server (SIGKILL: no shutdown save, no goodbye to clients) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing is answered, like a
    /// Redis stalled by a slow disk or a long command.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, which: &str) {
        let pid = self.child.as_ref().expect("server running").id();
        let ok = Command::new("kill")
            .args([which, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {which} {pid}");
    }

    /// Starts the server again with the same port, arguments and directory, and waits until
    /// it answers and has loaded its data.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let child = Command::new(&self.binary)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Kills the server and starts it again on the same port and directory.
    pub fn restart(&mut self) {
        self.kill();
        self.start_again();
    }

    /// Sends one command (arguments without spaces) and returns the raw reply.
    pub fn command(&self, args: &[&str]) -> std::io::Result<String> {
        command(self.port, args)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "redis-server on port {} exited with {status}; its log:\n{}",
                    self.port,
                    std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
                );
            }
            if let Ok(info) = self.command(&["INFO", "persistence"])
                && info.contains("loading:0")
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer within {START_TIMEOUT:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends one inline command to 127.0.0.1:`port` and reads one whole reply (simple, error,
/// integer, bulk or a flat array of those), returned raw.
pub fn command(port: u16, args: &[&str]) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut out = String::new();
    read_reply(&mut reader, &mut out)?;
    Ok(out)
}

fn read_reply(reader: &mut impl BufRead, out: &mut String) -> std::io::Result<()> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if line.is_empty() {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    out.push_str(&line);
    let n: i64 = line[1..].trim().parse().unwrap_or(-1);
    match line.as_bytes()[0] {
        b'$' if n >= 0 => {
            let mut body = vec![0; n as usize + 2];
            reader.read_exact(&mut body)?;
            out.push_str(&String::from_utf8_lossy(&body));
        }
        b'*' => {
            for _ in 0..n.max(0) {
                read_reply(reader, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A Redis Cluster of three primaries (no replicas) on loopback, slots split evenly.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Three cluster-enabled servers, slots assigned and the nodes introduced (the same as
    /// `redis-cli --cluster create ... --cluster-replicas 0`, without needing redis-cli),
    /// ready when every node says `cluster_state:ok`. `None` if the test is skipped.
    pub fn start(test: &str) -> Option<RedisCluster> {
        let binary = redis_server(test)?;
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                let bus = free_port().to_string();
                RedisServer::start_binary(
                    binary.clone(),
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-port",
                        &bus,
                        "--cluster-node-timeout",
                        "2000",
                        // The healthy primaries go on serving their slots while one is
                        // away, as a deployment that wants no head-of-line blocking sets.
                        "--cluster-require-full-coverage",
                        "no",
                    ],
                )
            })
            .collect();
        let cluster = RedisCluster { nodes };
        let ranges = [(0, 5460), (5461, 10922), (10923, 16383)];
        for (node, (from, to)) in cluster.nodes.iter().zip(ranges) {
            let reply = node
                .command(&[
                    "CLUSTER",
                    "ADDSLOTSRANGE",
                    &from.to_string(),
                    &to.to_string(),
                ])
                .expect("ADDSLOTSRANGE");
            assert!(reply.starts_with("+OK"), "ADDSLOTSRANGE: {reply}");
        }
        let first = &cluster.nodes[0];
        for node in &cluster.nodes[1..] {
            let bus = node.bus_port();
            let reply = first
                .command(&[
                    "CLUSTER",
                    "MEET",
                    "127.0.0.1",
                    &node.port.to_string(),
                    &bus.to_string(),
                ])
                .expect("MEET");
            assert!(reply.starts_with("+OK"), "MEET: {reply}");
        }
        cluster.wait_ok();
        Some(cluster)
    }

    /// The nodes' URLs.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// Waits until every node says `cluster_state:ok` and knows all three nodes.
    pub fn wait_ok(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let ready = self.nodes.iter().all(|n| {
                let info = n.command(&["CLUSTER", "INFO"]).unwrap_or_default();
                info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3")
            });
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not reach cluster_state:ok within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl RedisServer {
    /// The cluster bus port given with `--cluster-port`.
    fn bus_port(&self) -> u16 {
        self.args
            .iter()
            .position(|a| a == "--cluster-port")
            .and_then(|i| self.args.get(i + 1))
            .and_then(|p| p.parse().ok())
            .expect("a cluster node has --cluster-port")
    }
}
