//! Redis store: grants per second decided and made durable by a real `redis-server`
//! (`appendonly yes`, `appendfsync always`, its AOF on this disk), through the store's
//! batched pipelines, against one round trip per grant, in the same run.
//!
//! Every ask is a new grant for a document with no state yet (a citizen's first SMS of the
//! day, the common case at the morning peak). Keys expire the next day, as in production,
//! so no expiry runs during the measurement; the keyspace is flushed between shapes to bound
//! memory, and automatic AOF rewrites are off so a fork does not land in one shape only.
//! A CPU report at the end gives each side's CPU per grant, which unlike grants per second
//! does not depend much on what else the machine is running.
//!
//! Run: `cargo bench --bench redis`. Starts its own `redis-server` on a free port; without
//! one on PATH it prints SKIPPED.

#[path = "../tests/support/redis.rs"]
mod redis_support;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use icaze::permit::clock::Calendar;
use icaze::permit::document::Document;
use icaze::store::redis::{GrantAsk, RedisOptions, RedisStore, RedisVerdict};
use redis_support::RedisServer;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Validity of the unlimited code asked for.
const VALIDITY: u32 = 2 * 3600;

/// Hands out asks that are each a new grant: a new document every time.
struct Asks {
    next: AtomicU64,
    calendar: Calendar,
}

impl Asks {
    fn new() -> Asks {
        Asks {
            next: AtomicU64::new(0),
            calendar: Calendar::new(chrono_tz::Asia::Baku),
        }
    }

    fn take(&self, n: usize, out: &mut Vec<GrantAsk>) {
        out.clear();
        let first = self.next.fetch_add(n as u64, Ordering::Relaxed);
        let now = chrono::Utc::now().timestamp();
        let m = self.calendar.moment(now);
        for k in first..first + n as u64 {
            let digits = format!("{:08}", k % 100_000_000);
            out.push(GrantAsk {
                document: Document::new(b"AZE", digits.as_bytes()).expect("valid"),
                code: 3,
                group_tag: 3,
                shared: false,
                limit: None,
                validity_secs: VALIDITY,
                now,
                day_start: m.day_start,
                expire_at: m.day_start + 86_400 + i64::from(VALIDITY),
            });
        }
    }
}

/// `callers` tasks, each deciding `per_call` asks per call, `iters` calls each; the time
/// they took. Panics unless every ask was granted.
async fn run(
    store: &RedisStore,
    asks: &Arc<Asks>,
    callers: usize,
    per_call: usize,
    iters: u64,
) -> Duration {
    let start = Instant::now();
    let handles: Vec<_> = (0..callers)
        .map(|_| {
            let store = store.clone();
            let asks = asks.clone();
            tokio::spawn(async move {
                let mut batch = Vec::with_capacity(per_call);
                for _ in 0..iters {
                    asks.take(per_call, &mut batch);
                    let verdicts = store.decide(&batch).await.expect("decided");
                    assert!(
                        verdicts
                            .iter()
                            .all(|v| matches!(v, RedisVerdict::Granted(_))),
                        "every ask is a new grant"
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("caller");
    }
    start.elapsed()
}

fn grants(c: &mut Criterion) {
    let Some(binary) = redis_support::redis_server("benches/redis") else {
        return;
    };
    let server = RedisServer::start_binary(binary, &["--auto-aof-rewrite-percentage", "0"]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let asks = Arc::new(Asks::new());
    let batched = rt
        .block_on(RedisStore::connect(RedisOptions {
            jitter: Duration::ZERO,
            ..RedisOptions::standalone(server.url())
        }))
        .expect("connect");
    // One connection: Redis reads about a hundred asks from it per event-loop turn, and
    // each turn pays an fsync.
    let one_conn = rt
        .block_on(RedisStore::connect(RedisOptions {
            pipelines_in_flight: 1,
            jitter: Duration::ZERO,
            ..RedisOptions::standalone(server.url())
        }))
        .expect("connect");
    // One FCALL per round trip: no batching, one pipeline in flight.
    let one_by_one = rt
        .block_on(RedisStore::connect(RedisOptions {
            batch_max: 1,
            flush_after: Duration::ZERO,
            pipelines_in_flight: 1,
            jitter: Duration::ZERO,
            ..RedisOptions::standalone(server.url())
        }))
        .expect("connect");

    let mut group = c.benchmark_group("redis/grants");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let shapes: [(&str, &RedisStore, usize, usize); 5] = [
        ("batched", &batched, 256, 1),
        ("batched", &batched, 1024, 1),
        ("batched", &batched, 32, 16),
        ("batched_1_connection", &one_conn, 32, 16),
        ("round_trip_per_grant", &one_by_one, 256, 1),
    ];
    for (name, store, callers, per_call) in shapes {
        group.throughput(Throughput::Elements((callers * per_call) as u64));
        let id = BenchmarkId::new(name, format!("{callers}x{per_call}"));
        group.bench_function(id, |b| {
            b.iter_custom(|iters| rt.block_on(run(store, &asks, callers, per_call, iters)));
        });
        flush(&server);
    }
    group.finish();

    // What each grant costs in CPU, on each side: unlike grants per second, this does not
    // depend on what else the machine runs. With a core each, the slower side bounds the
    // rate at 1e6 / (its µs per grant).
    for (name, store, callers, per_call) in shapes {
        let total = if store_batches(name) { 200_000 } else { 20_000 };
        let grants = total / (callers * per_call) as u64;
        flush(&server);
        let redis_before = redis_cpu_secs(&server);
        let client_before = process_cpu_secs();
        let took = rt.block_on(run(store, &asks, callers, per_call, grants));
        let n = (grants * (callers * per_call) as u64) as f64;
        let redis_us = (redis_cpu_secs(&server) - redis_before) * 1e6 / n;
        let client_us = (process_cpu_secs() - client_before) * 1e6 / n;
        eprintln!(
            "cpu {name}/{callers}x{per_call}: {:.0} grants/s wall, redis-server {redis_us:.2} µs/grant, \
             client {client_us:.2} µs/grant (all threads), load average {}",
            n / took.as_secs_f64(),
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
    }
}

/// Empties the keyspace (the function library stays), freeing memory in the background.
fn flush(server: &RedisServer) {
    let reply = server.command(&["FLUSHALL", "ASYNC"]).unwrap_or_default();
    assert!(reply.starts_with("+OK"), "FLUSHALL: {reply}");
    std::thread::sleep(Duration::from_millis(300));
}

/// Whether a shape batches (the one-round-trip shape is too slow for 200,000 grants).
fn store_batches(name: &str) -> bool {
    name.starts_with("batched")
}

/// CPU seconds (user + system) the server has used, from `INFO cpu`.
fn redis_cpu_secs(server: &RedisServer) -> f64 {
    let info = server.command(&["INFO", "cpu"]).unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let (key, value) = l.trim().split_once(':')?;
            matches!(key, "used_cpu_sys" | "used_cpu_user")
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// CPU seconds (user + system, all threads) this process has used, from /proc/self/stat
/// (in clock ticks of 1/100 s).
fn process_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

criterion_group!(benches, grants);
criterion_main!(benches);
