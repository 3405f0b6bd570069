//! Verification throughput against a bare ring HMAC-SHA256 of the same payload, in one run:
//! Standard Webhooks v1, Stripe and the partner (Aurora) headers, each at four body sizes.
//!
//! `cargo bench -p haven-webhooks --bench verify`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use haven_webhooks::{Scheme, Secret, Verifier, sign_header};
use http::{HeaderMap, HeaderValue};
use ring::hmac;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TS: i64 = 1_700_000_000;

fn payload(len: usize) -> Vec<u8> {
    let mut body = br#"{"type":"token.minted","data":{"pad":""#.to_vec();
    body.resize(len.saturating_sub(3), b'x');
    body.extend_from_slice(br#""}}"#);
    body
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    let raw_key = base64_key();
    let ring_key = hmac::Key::new(hmac::HMAC_SHA256, &raw_key);
    for len in [256usize, 1024, 4 * 1024, 64 * 1024] {
        let body = payload(len);
        group.throughput(Throughput::Bytes(len as u64));

        group.bench_with_input(
            BenchmarkId::new("ring_hmac_sha256", len),
            &body,
            |b, body| b.iter(|| hmac::sign(black_box(&ring_key), black_box(body))),
        );

        let secret = Secret::standard(SECRET).unwrap_or_else(|e| panic!("{e}"));
        let sig = sign_header(Scheme::Standard, &secret, Some(ID), TS, &body)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", HeaderValue::from_static(ID));
        headers.insert("webhook-timestamp", HeaderValue::from(TS));
        headers.insert(
            "webhook-signature",
            HeaderValue::from_str(&sig).unwrap_or_else(|e| panic!("{e}")),
        );
        let verifier = Verifier::new("bench", Scheme::Standard, vec![secret]);
        group.bench_with_input(
            BenchmarkId::new("standard_v1_verify", len),
            &body,
            |b, body| {
                b.iter(|| {
                    verifier
                        .verify(black_box(&headers), black_box(body), TS)
                        .unwrap_or_else(|e| panic!("{e}"))
                })
            },
        );

        let stripe_secret = Secret::raw(SECRET).unwrap_or_else(|e| panic!("{e}"));
        let stripe_sig = sign_header(Scheme::Stripe, &stripe_secret, None, TS, &body)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut stripe_headers = HeaderMap::new();
        stripe_headers.insert(
            "stripe-signature",
            HeaderValue::from_str(&stripe_sig).unwrap_or_else(|e| panic!("{e}")),
        );
        let stripe = Verifier::new("bench", Scheme::Stripe, vec![stripe_secret]);
        group.bench_with_input(BenchmarkId::new("stripe_verify", len), &body, |b, body| {
            b.iter(|| {
                stripe
                    .verify(black_box(&stripe_headers), black_box(body), TS)
                    .unwrap_or_else(|e| panic!("{e}"))
            })
        });

        let partner_secret = Secret::raw(SECRET).unwrap_or_else(|e| panic!("{e}"));
        let partner_sig = sign_header(Scheme::Aurora, &partner_secret, None, TS, &body)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut partner_headers = HeaderMap::new();
        partner_headers.insert("x-aurora-timestamp", HeaderValue::from(TS));
        partner_headers.insert(
            "x-aurora-signature",
            HeaderValue::from_str(&partner_sig).unwrap_or_else(|e| panic!("{e}")),
        );
        let partner = Verifier::new("bench", Scheme::Aurora, vec![partner_secret]);
        group.bench_with_input(BenchmarkId::new("partner_verify", len), &body, |b, body| {
            b.iter(|| {
                partner
                    .verify(black_box(&partner_headers), black_box(body), TS)
                    .unwrap_or_else(|e| panic!("{e}"))
            })
        });
    }
    group.finish();
}

fn base64_key() -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .unwrap_or_else(|e| panic!("{e}"))
}

criterion_group!(benches, bench);
criterion_main!(benches);
