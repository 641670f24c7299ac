//! SMS text codings: ns per MO text decode (GSM 7-bit, UCS-2) and per reply encode and
//! segmentation (GSM single part, Azerbaijani UCS-2 single and concatenated).
//!
//! Run: `cargo bench --bench text`.

use criterion::{Criterion, criterion_group, criterion_main};
use icaze::smpp::text::{self, DCS_DEFAULT, DCS_UCS2};
use std::hint::black_box;

fn bench_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("text_decode");
    let gsm = b"2 AZE 11111111";
    g.bench_function("gsm7", |b| {
        b.iter(|| text::decode(DCS_DEFAULT, black_box(gsm)))
    });
    let ucs2: Vec<u8> = "2 MYİ1234567"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    g.bench_function("ucs2", |b| {
        b.iter(|| text::decode(DCS_UCS2, black_box(&ucs2)))
    });
    g.finish();
}

fn bench_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("text_encode");
    let short_gsm = "Permit granted: 2 AZE 11111111, 10:00-12:00";
    g.bench_function("gsm7_single", |b| {
        b.iter(|| text::encode_mt(black_box(short_gsm), 1))
    });
    let short_az = "İcazə verildi: 2 AZE 11111111, 10:00–12:00";
    g.bench_function("ucs2_single", |b| {
        b.iter(|| text::encode_mt(black_box(short_az), 1))
    });
    let long_az = "İcazə verildi: kod 2, AZE 11111111, etibarlıdır 10:00–12:00. \
                   Evdən çıxarkən şəxsiyyət vəsiqənizi götürün.";
    g.bench_function("ucs2_two_parts", |b| {
        b.iter(|| text::encode_mt(black_box(long_az), 1))
    });
    g.finish();
}

criterion_group!(benches, bench_decode, bench_encode);
criterion_main!(benches);
