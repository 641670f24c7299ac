//! Test support: start a real icaze gateway on 127.0.0.1:0, SMPP clients, redis-server.

#![allow(dead_code)]

pub mod browser;
pub mod http;
pub mod process;
pub mod redis;
pub mod smpp;
pub mod tls;

/// Skip-or-fail for missing dependencies; declared in `redis.rs`, which
/// `tests/redis_store.rs` includes on its own and which needs it too.
#[allow(unused_imports)] // only the tests that can skip use it
pub use redis::needs;

use icaze::config::Config;
use icaze::gateway::Gateway;
use icaze::permit::clock::FakeClock;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// 10:00 in Baku on Monday 6 April 2020.
pub const MONDAY_10AM: &str = "2020-04-06T10:00:00+04:00";

/// A gateway running in this process on a real TCP port.
pub struct TestGateway {
    pub addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    pub clock: Arc<FakeClock>,
    pub shutdown: CancellationToken,
    pub done: tokio::task::JoinHandle<()>,
    pub dir: tempfile::TempDir,
}

/// The shipped rules file.
pub fn shipped_rules() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/rules.toml")
}

/// A config: the shipped rules, listening on port 0, with `extra` TOML appended (operators
/// and [smpp] keys). With no `[[operators]]` in `extra`, operator `demo`/`demo`.
pub fn config(dir: &std::path::Path, smpp: &str, operators: &str) -> Config {
    let operators = if operators.is_empty() {
        "[[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\n"
    } else {
        operators
    };
    let text = format!(
        "rules = {:?}\ndata_dir = \"data\"\n[permit]\nkey = \"integration-test-key\"\n[smpp]\nlisten = \"127.0.0.1:0\"\n{smpp}\n{operators}",
        shipped_rules().display().to_string()
    );
    Config::from_toml(&dir.join("icaze.toml"), &text, &|_| None).expect("test config is valid")
}

pub fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

impl TestGateway {
    /// Starts a gateway with the given [smpp] keys and operators, journal in a temp dir.
    pub async fn start(smpp: &str, operators: &str) -> TestGateway {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), smpp, operators);
        Self::start_with(config, dir).await
    }

    pub async fn start_with(config: Config, dir: tempfile::TempDir) -> TestGateway {
        Self::start_with_tls(config, dir, None).await
    }

    /// [`TestGateway::start_with`], with the SMPP TLS port on `tls` (the config needs
    /// `[smpp.tls]`).
    pub async fn start_with_tls(
        config: Config,
        dir: tempfile::TempDir,
        tls: Option<tokio::net::TcpListener>,
    ) -> TestGateway {
        let clock = Arc::new(FakeClock::new(at(MONDAY_10AM)));
        let gateway = Arc::new(Gateway::open(config, clock.clone(), false).expect("gateway opens"));
        Self::serve(gateway, clock, CancellationToken::new(), dir, tls).await
    }

    /// Serves `gateway` (built by the caller: on another store, with a journal replayed by
    /// hand) on a free port, TLS on `tls` if given, until `shutdown`.
    pub async fn serve(
        gateway: Arc<Gateway>,
        clock: Arc<FakeClock>,
        shutdown: CancellationToken,
        dir: tempfile::TempDir,
        tls: Option<tokio::net::TcpListener>,
    ) -> TestGateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let done = tokio::spawn(icaze::gateway::listener::serve_with_tls(
            gateway.clone(),
            listener,
            tls,
            shutdown.clone(),
        ));
        TestGateway {
            addr,
            gateway,
            clock,
            shutdown,
            done,
            dir,
        }
    }

    /// A client bound as a transceiver with demo/demo.
    pub async fn trx(&self) -> smpp::Client {
        let mut c = smpp::Client::connect(self.addr).await;
        assert_eq!(
            c.bind(smpp::BIND_TRANSCEIVER, "demo", "demo").await,
            smpp::ESME_ROK
        );
        c
    }
}
