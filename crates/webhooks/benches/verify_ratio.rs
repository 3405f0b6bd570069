//! The ratio of `benches/verify.rs` measured so that load on a shared machine cancels out:
//! the bare ring HMAC-SHA256 of the body (key prepared once) and each verifier run in
//! alternating batches of the same length, and the ratio is taken per round, so both sides
//! of one ratio saw the same machine. Prints the median time per call of each side and the
//! median and quartiles of the per-round ratios (baseline time / verify time).
//!
//! `cargo bench -p haven-webhooks --bench verify_ratio [-- SIZE… SCHEME…]` (payload sizes in
//! bytes and scheme names, all by default; under `cargo test`, without the `--bench` flag, it runs two rounds
//! only, and the breakdown below too, as a smoke test).
//!
//! With `breakdown` among the arguments it prints instead where a Standard Webhooks
//! verification spends its time beyond the HMAC, by steps measured in the same interleaved
//! way: ring over the body (the baseline), `sha2`'s HMAC over the body, the same over the
//! signed content `id.timestamp.body` handed over in pieces as the verifier does,
//! [`haven_webhooks::verify`] on the header values as strings (parsing, checks, comparison)
//! and [`Verifier::verify`] on a `HeaderMap` (plus the header look-up). The `sha2` steps
//! describe the verifier on CPUs with SHA extensions; the first line of output says which
//! HMAC this CPU's verifier uses.

use std::hint::black_box;
use std::time::Instant;

use ::hmac::Mac as _;
use haven_webhooks::{
    HmacBackend, Scheme, Secret, SignedParts, Tolerance, Verifier, sign_header, verify,
};
use http::{HeaderMap, HeaderValue};
use ring::hmac;

/// The HMAC the verifier computes with on CPUs with SHA extensions (RustCrypto).
type RcHmac = ::hmac::Hmac<sha2::Sha256>;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TS: i64 = 1_700_000_000;
const ROUNDS: usize = 200;
/// Bytes hashed per batch: about 0.5 MB, a fraction of a millisecond.
const BATCH_BYTES: usize = 512 * 1024;

fn payload(len: usize) -> Vec<u8> {
    let mut body = br#"{"type":"token.minted","data":{"pad":""#.to_vec();
    body.resize(len.saturating_sub(3), b'x');
    body.extend_from_slice(br#""}}"#);
    body
}

fn verifier(scheme: Scheme, body: &[u8]) -> (Verifier, HeaderMap) {
    let secret = Secret::for_scheme(scheme, SECRET).unwrap_or_else(|e| panic!("{e}"));
    let id = (scheme == Scheme::Standard).then_some(ID);
    let sig = sign_header(scheme, &secret, id, TS, body).unwrap_or_else(|e| panic!("{e}"));
    let mut headers = HeaderMap::new();
    if let Some(id) = id {
        headers.insert("webhook-id", HeaderValue::from_static(id));
    }
    if let Some(name) = scheme.timestamp_header() {
        headers.insert(name, HeaderValue::from(TS));
    }
    headers.insert(
        scheme.signature_header(),
        HeaderValue::from_str(&sig).unwrap_or_else(|e| panic!("{e}")),
    );
    (Verifier::new("bench", scheme, vec![secret]), headers)
}

/// Nanoseconds per call of `f`, over `n` calls.
fn time_per_call(n: usize, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_secs_f64() * 1e9 / n as f64
}

fn quartiles(mut values: Vec<f64>) -> [f64; 3] {
    values.sort_by(f64::total_cmp);
    let at = |q: usize| values[(values.len() - 1) * q / 4];
    [at(1), at(2), at(3)]
}

fn median(values: &[f64]) -> f64 {
    quartiles(values.to_vec())[1]
}

/// Median nanoseconds per call of each step, the steps run in alternating batches of `n`.
fn interleaved(rounds: usize, n: usize, steps: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    let mut times = vec![Vec::with_capacity(rounds); steps.len()];
    for _ in 0..rounds {
        for (step, times) in steps.iter_mut().zip(&mut times) {
            times.push(time_per_call(n, step));
        }
    }
    times.iter().map(|t| median(t)).collect()
}

/// The `breakdown` mode: see the crate-level comment.
fn breakdown(ring_key: &hmac::Key, sizes: &[usize], rounds: usize) {
    println!("HMAC in the verifier: {}", HmacBackend::detect().name());
    println!(
        "payload  ring HMAC  sha2 HMAC  +signed content  +parse,check,compare  +header look-up"
    );
    let raw_key = raw_key();
    let rc_key = RcHmac::new_from_slice(&raw_key).unwrap_or_else(|e| panic!("{e}"));
    for &len in sizes {
        let body = payload(len);
        let (verifier, headers) = verifier(Scheme::Standard, &body);
        let value = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{name}"))
        };
        let (id, timestamp, signature) = (
            value("webhook-id"),
            value("webhook-timestamp"),
            value("webhook-signature"),
        );
        let secrets =
            [Secret::for_scheme(Scheme::Standard, SECRET).unwrap_or_else(|e| panic!("{e}"))];
        let parts = SignedParts {
            id: Some(id),
            timestamp: Some(timestamp),
            signature,
        };
        let times = interleaved(
            rounds,
            (BATCH_BYTES / len).max(8),
            &mut [
                &mut || {
                    black_box(hmac::sign(black_box(ring_key), black_box(&body)));
                },
                &mut || {
                    let mut mac = black_box(&rc_key).clone();
                    mac.update(black_box(&body));
                    black_box(mac.finalize().into_bytes());
                },
                &mut || {
                    let mut mac = black_box(&rc_key).clone();
                    mac.update(black_box(id.as_bytes()));
                    mac.update(b".");
                    mac.update(black_box(timestamp.as_bytes()));
                    mac.update(b".");
                    mac.update(black_box(&body));
                    black_box(mac.finalize().into_bytes());
                },
                &mut || {
                    let parts = black_box(parts);
                    let ok = verify(
                        Scheme::Standard,
                        &secrets,
                        parts,
                        &body,
                        TS,
                        Tolerance::default(),
                    );
                    black_box(ok.unwrap_or_else(|e| panic!("{e}")));
                },
                &mut || {
                    let ok = verifier.verify(black_box(&headers), black_box(&body), TS);
                    black_box(ok.unwrap_or_else(|e| panic!("{e}")));
                },
            ],
        );
        println!(
            "{len:>7}  {:>7.1} ns  {:>6.1} ns  {:>+12.1} ns  {:>+17.1} ns  {:>+13.1} ns",
            times[0],
            times[1],
            times[2] - times[1],
            times[3] - times[2],
            times[4] - times[3],
        );
    }
}

/// The secret's key bytes, as the baseline HMACs take them.
fn raw_key() -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn main() {
    let ring_key = hmac::Key::new(hmac::HMAC_SHA256, &raw_key());
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut schemes = vec![
        ("standard_v1", Scheme::Standard),
        ("stripe", Scheme::Stripe),
        ("partner", Scheme::Aurora),
    ];
    if schemes
        .iter()
        .any(|(name, _)| args.contains(&name.to_string()))
    {
        schemes.retain(|(name, _)| args.contains(&name.to_string()));
    }
    let smoke_test = !args.iter().any(|arg| arg == "--bench");
    let rounds = if smoke_test { 2 } else { ROUNDS };
    let mut sizes: Vec<usize> = args.iter().filter_map(|arg| arg.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![64, 256, 1024, 4 * 1024, 64 * 1024];
    }
    if args.iter().any(|arg| arg == "breakdown") {
        breakdown(&ring_key, &sizes, rounds);
        return;
    }
    println!("HMAC in the verifier: {}", HmacBackend::detect().name());
    println!("payload  scheme       ring HMAC  verify     ratio (q1 / median / q3)");
    for &len in &sizes {
        let body = payload(len);
        let n = (BATCH_BYTES / len).max(8);
        let verifiers: Vec<_> = schemes
            .iter()
            .map(|&(name, scheme)| (name, verifier(scheme, &body)))
            .collect();
        let mut baseline = vec![Vec::with_capacity(rounds); verifiers.len()];
        let mut measured = baseline.clone();
        let mut ratios = baseline.clone();
        for _ in 0..rounds {
            for (i, (_, (verifier, headers))) in verifiers.iter().enumerate() {
                let base = time_per_call(n, || {
                    black_box(hmac::sign(black_box(&ring_key), black_box(&body)));
                });
                let verify = time_per_call(n, || {
                    black_box(
                        verifier
                            .verify(black_box(headers), black_box(&body), TS)
                            .unwrap_or_else(|e| panic!("{e}")),
                    );
                });
                baseline[i].push(base);
                measured[i].push(verify);
                ratios[i].push(base / verify);
            }
        }
        for (i, (name, _)) in verifiers.iter().enumerate() {
            let [_, base, _] = quartiles(baseline[i].clone());
            let [_, verify, _] = quartiles(measured[i].clone());
            let [q1, median, q3] = quartiles(ratios[i].clone());
            println!(
                "{len:>7}  {name:<11}  {base:>7.1} ns  {verify:>7.1} ns  {q1:.2} / {median:.2} / {q3:.2}"
            );
        }
    }
    if smoke_test {
        // The breakdown mode runs too, so that it cannot rot unnoticed.
        breakdown(&ring_key, &sizes, rounds);
    }
}
