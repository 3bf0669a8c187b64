//! `cyberid bench floor`: the cryptography a sign-in cannot do without, timed on this
//! machine — one ES256 verification (the wallet's approval) and one ES256 signature (the ID
//! token), with the same keys and library as the platform. A sign-in's server CPU is
//! reported as a multiple of this; it differs from machine to machine, so it is measured
//! in the same run as the sign-ins, never taken from elsewhere.

use std::time::Instant;

use clap::Args;
use cyberid_crypto::jose::SigningKey;
use serde_json::json;

use crate::{CliResult, Failure, print_json};

/// Rounds of `--count` operations each; the figures are the rounds' medians.
const ROUNDS: usize = 5;

/// What the platform signs and verifies is a few hundred bytes (header and claims, base64url).
const APPROVAL_SIGNING_INPUT_BYTES: usize = 420;
const ID_TOKEN_SIGNING_INPUT_BYTES: usize = 560;

#[derive(Args)]
pub struct FloorArgs {
    /// Verifications and signatures per round (five rounds).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    count: u32,
    #[arg(long)]
    pub(crate) json: bool,
}

pub fn run(args: FloorArgs) -> CliResult {
    let failed = |what: &str| Failure {
        code: "bench_failed".into(),
        description: format!("the crypto floor could not be measured: {what}"),
    };
    let (device_key, _) = SigningKey::generate().map_err(|_| failed("device key"))?;
    let (issuer_key, _) = SigningKey::generate().map_err(|_| failed("issuer key"))?;
    let approval = vec![b'a'; APPROVAL_SIGNING_INPUT_BYTES];
    let id_token = vec![b'i'; ID_TOKEN_SIGNING_INPUT_BYTES];
    let signature = device_key.sign(&approval).map_err(|_| failed("approval"))?;
    let verifying_key = device_key.verifying_key();
    let count = args.count as usize;

    let (mut verify_us, mut sign_us) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for _ in 0..count {
            verifying_key
                .verify(std::hint::black_box(&approval), &signature)
                .map_err(|_| failed("verification"))?;
        }
        verify_us.push(started.elapsed().as_secs_f64() * 1e6 / count as f64);
        let started = Instant::now();
        for _ in 0..count {
            std::hint::black_box(
                issuer_key
                    .sign(std::hint::black_box(&id_token))
                    .map_err(|_| failed("signature"))?,
            );
        }
        sign_us.push(started.elapsed().as_secs_f64() * 1e6 / count as f64);
    }
    let round = |us: f64| (us * 100.0).round() / 100.0;
    let (verify, sign) = (median(&mut verify_us), median(&mut sign_us));
    let report = json!({
        "operation": "floor",
        "rounds": ROUNDS,
        "per_round": count,
        "verify_us": round(verify),
        "sign_us": round(sign),
        "floor_us": round(verify + sign),
    });
    if args.json {
        print_json(&report);
    } else {
        println!(
            "crypto floor of a sign-in on this machine: {:.1} µs (ES256 verification {:.1} µs, signature {:.1} µs; medians of {ROUNDS} rounds of {count})",
            verify + sign,
            verify,
            sign
        );
    }
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
