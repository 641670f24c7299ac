//! The real `icaze serve` binary as a child process: its own config, its log collected, its
//! SMPP address read from the log, killed (SIGKILL) when dropped, so a failing assertion
//! leaves no process behind.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `icaze serve`.
pub struct Icaze {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Icaze {
    /// Writes `dir/NAME.toml` (a copy of the shipped rules as `dir/NAME-rules.toml` unless
    /// it exists, journal in `dir/NAME-data`, operator `demo`/`demo` answered in English,
    /// then `top` keys such as `store = …` and `tables` such as `[redis]`) and starts
    /// `icaze serve` on 127.0.0.1:0 with it, the admin API on another free port.
    pub fn spawn(dir: &Path, name: &str, top: &str, tables: &str) -> Icaze {
        Self::spawn_with_env(dir, name, top, tables, &[])
    }

    /// [`Icaze::spawn`] with environment variables set for the child (admin tokens).
    pub fn spawn_with_env(
        dir: &Path,
        name: &str,
        top: &str,
        tables: &str,
        env: &[(&str, &str)],
    ) -> Icaze {
        let config = dir.join(format!("{name}.toml"));
        let rules = dir.join(format!("{name}-rules.toml"));
        if !rules.exists() {
            std::fs::copy(super::shipped_rules(), &rules).unwrap();
        }
        std::fs::write(
            &config,
            format!(
                "rules = {:?}\ndata_dir = \"{name}-data\"\n{top}\n[permit]\nkey = \"process-test-key\"\n[[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\nlanguage = \"en\"\n{tables}\n",
                rules.display().to_string()
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_icaze"))
            .args([
                "--config",
                config.to_str().unwrap(),
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .envs(env.iter().copied())
            // ICAZE_TEST_LOG (e.g. "debug") reads more of a gateway that misbehaves.
            .env(
                "RUST_LOG",
                std::env::var("ICAZE_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("icaze starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        // Keep draining stderr so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Icaze { child, log }
    }

    /// The first log line containing `needle`, waiting up to `within` for it.
    pub fn wait_for_log(&mut self, needle: &str, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.log_line(needle) {
                return Some(line);
            }
            if Instant::now() >= deadline {
                return None;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader thread catch up with the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return self.log_line(needle).or_else(|| {
                    panic!("icaze exited with {status}; its log:\n{}", self.log_text())
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The first log line so far containing `needle`.
    pub fn log_line(&self, needle: &str) -> Option<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains(needle))
            .cloned()
    }

    /// The whole log so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The SMPP address, once the gateway listens (waits up to `within`).
    pub fn addr_within(&mut self, within: Duration) -> SocketAddr {
        let line = self
            .wait_for_log("SMPP listening", within)
            .unwrap_or_else(|| {
                panic!(
                    "icaze did not listen in {within:?}; its log:\n{}",
                    self.log_text()
                )
            });
        line.split("addr=")
            .nth(1)
            .expect("the listening line names its address")
            .trim()
            .parse()
            .expect("an address")
    }

    /// The admin API's address, once it listens (waits up to 20 s).
    pub fn admin_addr(&mut self) -> SocketAddr {
        self.logged_addr("admin API listening")
    }

    /// The SMPP TLS port's address, once it listens (waits up to 20 s).
    pub fn tls_addr(&mut self) -> SocketAddr {
        self.logged_addr("SMPP TLS listening")
    }

    /// The address at the end of the first log line holding `needle` (waits up to 20 s).
    fn logged_addr(&mut self, needle: &str) -> SocketAddr {
        let line = self
            .wait_for_log(needle, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("no {needle:?} in its log:\n{}", self.log_text()));
        line.split("addr=")
            .nth(1)
            .expect("the listening line names its address")
            .trim()
            .parse()
            .expect("an address")
    }

    /// Replies owed now (`icaze_replies_owed` in `/metrics`).
    pub async fn owed(&mut self) -> u64 {
        let metrics = super::http::get(self.admin_addr(), "/metrics", None).await;
        metrics
            .text
            .lines()
            .find_map(|l| l.strip_prefix("icaze_replies_owed "))
            .and_then(|v| v.trim().parse().ok())
            .expect("icaze_replies_owed in /metrics")
    }

    /// Waits (up to 10 s) until every reply delivered is settled in the store, so a kill
    /// after this sends none of them again (before it, a reply whose answer was just read
    /// may come once more after a restart: at least once).
    pub async fn wait_settled(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.owed().await > 0 {
            assert!(Instant::now() < deadline, "replies still owed after 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The process id (to read its /proc entries).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGHUP (reload rules and certificates).
    pub fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -HUP");
    }

    /// Sends SIGKILL and waits for the process to be gone.
    pub fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The SMPP address (waits up to 20 s).
    pub fn addr(&mut self) -> SocketAddr {
        self.addr_within(Duration::from_secs(20))
    }
}

impl Drop for Icaze {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
