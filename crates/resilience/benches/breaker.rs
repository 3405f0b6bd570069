//! Local circuit breaker overhead per call against a bare call, in the same run.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use haven_resilience::{BreakerConfig, CircuitBreaker, Outcome};

#[inline(never)]
fn operation(x: u64) -> Result<u64, ()> {
    Ok(black_box(x).wrapping_mul(31))
}

fn overhead(c: &mut Criterion) {
    let breaker =
        CircuitBreaker::new("bench", BreakerConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("breaker_overhead");
    group.bench_function("bare_call", |b| b.iter(|| operation(black_box(7))));
    group.bench_function("permit_call", |b| {
        b.iter(|| {
            let permit = breaker.try_acquire();
            let result = operation(black_box(7));
            if let Ok(p) = permit {
                p.record(if result.is_ok() {
                    Outcome::Success
                } else {
                    Outcome::Failure
                });
            }
            result
        })
    });
    group.bench_function("bare_async_call", |b| {
        b.iter(|| futures::executor::block_on(async { operation(black_box(7)) }))
    });
    group.bench_function("breaker_async_call", |b| {
        b.iter(|| futures::executor::block_on(breaker.call(|| async { operation(black_box(7)) })))
    });
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
