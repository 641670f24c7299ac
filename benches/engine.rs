//! Quota engine: ns per decision at 1M and 10M distinct documents, 1 and 2 threads, through
//! the single path (`decide_at`, one lock per decision) and the batch path
//! (`decide_batch_with`, batches of 256 and 1024 requests; `peek_batch_with`, the gateway's
//! tentative pass that records nothing, batches of 256), with governor's keyed limiter
//! (DashMap + foldhash, `check_key` one key at a time: it has no batch form) on the same keys
//! in the same run as the baseline; and bytes of memory per (document, quota group) entry.
//!
//! Every variant does the same requests in the same order: request `i` asks code
//! `i % 3 + 1` for document `i % n`. The engine starts empty (`QuotaEngine::new`) and grows
//! as in production, one decision at a time: the fill gives every document a code-2
//! permit (memory is measured there: one entry per document), then codes 1 and 3 (memory
//! again, three entries per document), so every variant then measures the same steady
//! state: a busy morning of re-sends of active permits. Governor gets the same keys first.
//!
//! Run: `cargo bench --bench engine`. Set `ICAZE_BENCH_SIZES=1000000` to skip 10M.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use governor::{Quota, RateLimiter};
use icaze::permit::document::Document;
use icaze::permit::engine::{BatchScratch, Decision, QuotaEngine};
use icaze::permit::request::PermitRequest;
use icaze::permit::rules::Rules;
use std::cell::RefCell;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// Requests per measured iteration (split over the threads).
const REQUESTS: usize = 1 << 16;

fn rules() -> Rules {
    Rules::from_toml(include_str!("../config/rules.toml")).expect("shipped rules load")
}

/// `n` distinct documents (AZE + 8 digits) in a scrambled order.
fn documents(n: usize) -> Vec<Document> {
    (0..n as u64)
        .map(|i| {
            let scrambled = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7) % 100_000_000;
            Document::new(b"AZE", format!("{scrambled:08}").as_bytes()).expect("valid")
        })
        .collect()
}

/// Resident memory of this process, bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn sizes() -> Vec<usize> {
    std::env::var("ICAZE_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000_000, 10_000_000])
}

/// Runs `requests(start, end)` over `REQUESTS` requests from `offset`, split into one
/// contiguous range per thread.
fn run<F: Fn(usize, usize) + Sync + ?Sized>(
    threads: usize,
    offset: usize,
    requests: &F,
) -> Duration {
    let start = Instant::now();
    if threads == 1 {
        requests(offset, offset + REQUESTS);
    } else {
        std::thread::scope(|s| {
            for t in 0..threads {
                s.spawn(move || {
                    let chunk = REQUESTS / threads;
                    requests(offset + t * chunk, offset + (t + 1) * chunk);
                });
            }
        });
    }
    start.elapsed()
}

/// A caller's reusable buffers for the batch path: requests, decisions, scratch.
#[derive(Default)]
struct Buffers {
    requests: Vec<PermitRequest>,
    out: Vec<Decision>,
    scratch: BatchScratch,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
}

/// One measured variant: its name and what it does with a range of requests.
type Variant<'a> = (&'static str, &'a (dyn Fn(usize, usize) + Sync));

/// The code request `i` asks for.
fn code_of(i: usize) -> u8 {
    (i % 3) as u8 + 1
}

fn engine_bench(c: &mut Criterion) {
    let rules = rules();
    // 10:00 Baku on a weekday in April 2020.
    let now = 1_586_152_800i64;
    let moment = rules.calendar.moment(now);
    for n in sizes() {
        let docs = documents(n);
        let before = rss();
        let engine = QuotaEngine::new();
        // Fill: every document gets a code-2 permit (one entry per document and group). The
        // slowest single decision is a shard growing (rehashing under its lock): the pause a
        // citizen's message may meet while the state grows.
        let fill = Instant::now();
        let mut slowest = Duration::ZERO;
        for d in &docs {
            let t = Instant::now();
            black_box(engine.decide_at(&rules, 2, *d, &moment));
            slowest = slowest.max(t.elapsed());
        }
        let fill = fill.elapsed();
        let memory = |label: &str| {
            let after = rss();
            let entries = engine.len();
            eprintln!(
                "engine: {label}: {entries} entries, {:.1} bytes per (document, quota group) entry (RSS {} MiB -> {} MiB)",
                (after.saturating_sub(before)) as f64 / entries as f64,
                before >> 20,
                after >> 20,
            );
        };
        memory("code 2 for every document");
        eprintln!(
            "engine: fill {:.0} ns per decision, slowest {:.1} ms (a shard growing)",
            fill.as_nanos() as f64 / n as f64,
            slowest.as_secs_f64() * 1e3
        );
        for code in [1, 3] {
            for d in &docs {
                black_box(engine.decide_at(&rules, code, *d, &moment));
            }
        }
        memory("codes 1, 2, 3 for every document");

        let governor = RateLimiter::dashmap_with_hasher(
            Quota::per_hour(NonZeroU32::new(1).expect("nonzero")),
            foldhash::fast::RandomState::default(),
        );
        for code in [2u64, 1, 3] {
            for d in &docs {
                let _ = black_box(governor.check_key(&(d.packed() | (code << 60))));
            }
        }

        let mut group = c.benchmark_group(format!("decide/{n}"));
        group.throughput(Throughput::Elements(REQUESTS as u64));
        group.sample_size(20);
        group.measurement_time(Duration::from_secs(4));
        // Codes 1, 2, 3 over the documents: re-sends of active permits, as on a busy morning.
        let single = |from: usize, to: usize| {
            for i in from..to {
                let d = docs[i % docs.len()];
                black_box(engine.decide_at(&rules, code_of(i), d, &moment));
            }
        };
        // `commit` false: the gateway's tentative pass (`peek_batch_with`), the same path
        // without the writes.
        let batched = |batch: usize, commit: bool| {
            let docs = &docs;
            let engine = &engine;
            let rules = &rules;
            move |from: usize, to: usize| {
                BUFFERS.with_borrow_mut(|b| {
                    let Buffers {
                        requests,
                        out,
                        scratch,
                    } = b;
                    for start in (from..to).step_by(batch) {
                        requests.clear();
                        requests.extend((start..(start + batch).min(to)).map(|i| PermitRequest {
                            code: code_of(i),
                            document: docs[i % docs.len()],
                            extra: String::new(),
                        }));
                        out.clear();
                        if commit {
                            engine.decide_batch_with(rules, requests, now, out, scratch);
                        } else {
                            engine.peek_batch_with(rules, requests, now, out, scratch);
                        }
                        black_box(&out);
                    }
                })
            }
        };
        let gov = |from: usize, to: usize| {
            for i in from..to {
                let d = docs[i % docs.len()];
                let key = d.packed() | (u64::from(code_of(i)) << 60);
                let _ = black_box(governor.check_key(&key));
            }
        };
        let batch_256 = batched(256, true);
        let batch_1024 = batched(1024, true);
        let peek_256 = batched(256, false);
        let variants: [Variant<'_>; 5] = [
            ("icaze", &single),
            ("icaze-batch256", &batch_256),
            ("icaze-batch1024", &batch_1024),
            ("icaze-peek-batch256", &peek_256),
            ("governor", &gov),
        ];
        for threads in [1usize, 2] {
            for (name, requests) in variants {
                let mut offset = 0usize;
                group.bench_function(BenchmarkId::new(name, format!("{threads}t")), |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            total += run(threads, offset, requests);
                            offset = offset.wrapping_add(REQUESTS);
                        }
                        total
                    })
                });
            }
        }
        group.finish();
        eprintln!(
            "engine: {} entries after the runs ({} per document)",
            engine.len(),
            engine.len() as f64 / n as f64
        );
        drop(governor);
        drop(engine);
    }
}

criterion_group!(benches, engine_bench);
criterion_main!(benches);
