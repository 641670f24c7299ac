//! Quota engine: ns per decision at 1M and 10M distinct documents, 1 and 2 threads, with
//! governor's keyed limiter (DashMap + foldhash) on the same keys in the same run as the
//! baseline; and bytes of memory per (document, quota group) entry at 10M entries.
//!
//! Run: `cargo bench --bench engine`. Set `ICAZE_BENCH_SIZES=1000000` to skip 10M.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use governor::{Quota, RateLimiter};
use icaze::permit::document::Document;
use icaze::permit::engine::QuotaEngine;
use icaze::permit::rules::Rules;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// Requests per measured batch.
const BATCH: usize = 1 << 16;

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

/// Runs `per_request` over `BATCH` requests starting at `offset`, split over `threads`.
fn run_batch<F: Fn(usize) + Sync>(threads: usize, offset: usize, per_request: &F) -> Duration {
    let start = Instant::now();
    if threads == 1 {
        for i in 0..BATCH {
            per_request(offset + i);
        }
    } else {
        std::thread::scope(|s| {
            for t in 0..threads {
                s.spawn(move || {
                    let chunk = BATCH / threads;
                    for i in t * chunk..(t + 1) * chunk {
                        per_request(offset + i);
                    }
                });
            }
        });
    }
    start.elapsed()
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
        // Fill: every document gets a code-2 permit (one entry per document and group).
        for d in &docs {
            black_box(engine.decide_at(&rules, 2, *d, &moment));
        }
        let after = rss();
        let entries = engine.len();
        eprintln!(
            "engine: {entries} entries, {:.1} bytes per (document, quota group) entry (RSS {} MiB -> {} MiB)",
            (after.saturating_sub(before)) as f64 / entries as f64,
            before >> 20,
            after >> 20
        );

        let governor = RateLimiter::dashmap_with_hasher(
            Quota::per_hour(NonZeroU32::new(1).expect("nonzero")),
            foldhash::fast::RandomState::default(),
        );
        for d in &docs {
            let _ = black_box(governor.check_key(&(d.packed() | (2 << 60))));
        }

        let mut group = c.benchmark_group(format!("decide/{n}"));
        group.throughput(Throughput::Elements(BATCH as u64));
        group.sample_size(20);
        group.measurement_time(Duration::from_secs(4));
        for threads in [1usize, 2] {
            // Codes 1, 2, 3 over the documents: mostly re-sends of active permits and new
            // permits of the codes not yet used, as on a busy morning.
            let icaze = |i: usize| {
                let d = docs[i % docs.len()];
                let code = (i % 3) as u8 + 1;
                black_box(engine.decide_at(&rules, code, d, &moment));
            };
            let gov = |i: usize| {
                let d = docs[i % docs.len()];
                let key = d.packed() | (((i % 3) as u64 + 1) << 60);
                let _ = black_box(governor.check_key(&key));
            };
            let mut offset = 0usize;
            group.bench_function(BenchmarkId::new("icaze", format!("{threads}t")), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += run_batch(threads, offset, &icaze);
                        offset = offset.wrapping_add(BATCH);
                    }
                    total
                })
            });
            let mut offset = 0usize;
            group.bench_function(BenchmarkId::new("governor", format!("{threads}t")), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += run_batch(threads, offset, &gov);
                        offset = offset.wrapping_add(BATCH);
                    }
                    total
                })
            });
        }
        group.finish();
        drop(governor);
        drop(engine);
    }
}

criterion_group!(benches, engine_bench);
criterion_main!(benches);
