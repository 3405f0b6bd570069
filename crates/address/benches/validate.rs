//! Throughput over the public vector mix, and EVM validation against one keccak256 of 40
//! bytes measured in the same run. The `multicoin` group uses the same inputs as
//! `benches/node/compare.js`, which measures the npm `multicoin-address-validator`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use haven_address::{Chain, Family};
use sha3::{Digest, Keccak256};

const VECTORS: &str = include_str!("../tests/vectors/address_public.json");

/// `(chain, input)` pairs of the public vectors, raw bech32 rows left out.
fn vectors() -> Vec<(Chain, String)> {
    let rows: Vec<serde_json::Value> = serde_json::from_str(VECTORS).unwrap();
    rows.iter()
        .filter_map(|row| {
            let chain = row["chain"].as_str()?.parse::<Chain>().ok()?;
            Some((chain, row["input"].as_str()?.to_owned()))
        })
        .collect()
}

fn vector_mix(c: &mut Criterion) {
    let inputs = vectors();
    let mut group = c.benchmark_group("vector_mix");
    group.throughput(Throughput::Elements(inputs.len() as u64));
    group.bench_function("validate_all", |b| {
        b.iter(|| {
            for (chain, input) in &inputs {
                let _ = black_box(chain.validate(black_box(input)));
            }
        });
    });
    group.finish();
}

fn evm(c: &mut Criterion) {
    let chain = Chain::new(Family::Evm);
    let checksummed = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
    let lower = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
    let body = &lower.as_bytes()[2..];
    let mut group = c.benchmark_group("evm");
    group.throughput(Throughput::Elements(1));
    group.bench_function("keccak256_40_bytes", |b| {
        b.iter(|| Keccak256::digest(black_box(body)));
    });
    group.bench_function("validate_checksummed", |b| {
        b.iter(|| chain.validate(black_box(checksummed)));
    });
    group.bench_function("validate_lowercase", |b| {
        b.iter(|| chain.validate(black_box(lower)));
    });
    group.finish();
}

fn multicoin(c: &mut Criterion) {
    let inputs = vectors();
    let mut group = c.benchmark_group("multicoin");
    for family in [Family::Evm, Family::Solana, Family::Bitcoin, Family::Tron] {
        let subset: Vec<&(Chain, String)> = inputs
            .iter()
            .filter(|(chain, _)| chain.family() == family)
            .collect();
        group.throughput(Throughput::Elements(subset.len() as u64));
        group.bench_function(family.name(), |b| {
            b.iter(|| {
                for (chain, input) in &subset {
                    let _ = black_box(chain.validate(black_box(input)));
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, vector_mix, evm, multicoin);
criterion_main!(benches);
