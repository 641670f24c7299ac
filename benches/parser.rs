//! Citizen text parser: ns per message over a mix of realistic texts (clean, lower case, no
//! spaces, Cyrillic by look and by sound, full-width and Persian digits, spread letters, O for
//! 0, a lost `?`, any order, greetings, a family, help, status, and refusals), parsed with
//! the shipped rules' parser; plus the clean text alone, a family alone and a refusal alone.
//!
//! Criterion's figure for `mix` is per batch of [`MIX`]; its throughput line gives
//! messages per second, and the bench prints ns per message. Run: `cargo bench --bench parser`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use icaze::permit::rules::Rules;
use std::hint::black_box;
use std::time::Instant;

/// What a busy day's texts look like: mostly well-formed, a fair share refused.
const MIX: &[&str] = &[
    "2 AZE 11111111",
    "1 AA1234567",
    "2 MYİ1234567",
    "3 DYİ 7654321",
    "2 MOM 1234567",
    "2 aze 12345678",
    "2aze11111111",
    "2   AZE   11111111",
    "2 aze 1111 1111",
    "2 АZЕ 11111111",
    "1 аа 1234567",
    "2 myı 1234567",
    "２ ＡＺＥ １１１１１１１１",
    "2,AZE,11111111",
    "2 AZE 11111111 10-AB-123",
    "2 AZE 1234567 market",
    "AZE 11111111",
    "7 AZE 11111111",
    "2 XYZ 1234567",
    "2 AZE 111111111",
    "AZE 11111111 2",
    "Kod 2 AZE 11111111",
    "Salam, zəhmət olmasa 2 AZE 11111111",
    "2 АЗЕ 11111111",
    "2 МЙИ 1234567",
    "2 A Z E 11111111",
    "2 AZE 1111O111",
    "۲ AZE ۱۲۳۴۵۶۷۸",
    "2 MY?1234567",
    "2 AZE 11111111 AA 1234567 MYİ 7654321",
    "kömək",
    "status AZE 11111111",
    "2 AZE 11111111 3",
];

fn parser_bench(c: &mut Criterion) {
    let rules = Rules::from_toml(include_str!("../config/rules.toml")).expect("shipped rules load");
    let parser = rules.parser();

    let mut g = c.benchmark_group("parser");
    g.throughput(Throughput::Elements(MIX.len() as u64));
    g.bench_function("mix", |b| {
        b.iter(|| {
            for text in MIX {
                let _ = black_box(parser.parse(black_box(text)));
            }
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("clean", |b| {
        b.iter(|| black_box(parser.parse(black_box("2 AZE 11111111"))))
    });
    g.bench_function("cyrillic_extra", |b| {
        b.iter(|| black_box(parser.parse(black_box("2 АZЕ 1111 1111 10-AB-123"))))
    });
    g.bench_function("family_of_three", |b| {
        b.iter(|| black_box(parser.parse(black_box("2 AZE 11111111 AA 1234567 MYİ 7654321"))))
    });
    g.bench_function("refused", |b| {
        b.iter(|| black_box(parser.parse(black_box("2 XYZ 1234567"))))
    });
    g.finish();

    // One plain figure for the README: ns per message over the mix.
    let rounds = 200_000;
    let start = Instant::now();
    for _ in 0..rounds {
        for text in MIX {
            let _ = black_box(parser.parse(black_box(text)));
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / (rounds * MIX.len()) as f64;
    println!("parser mix: {ns:.1} ns/message over {} texts", MIX.len());
}

criterion_group!(benches, parser_bench);
criterion_main!(benches);
