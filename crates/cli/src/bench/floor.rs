//! `cyberid bench floor`: the cryptography a sign-in cannot do without, timed on this
//! machine — one ES256 verification (the wallet's approval) and one ES256 signature (the ID
//! token), with the same keys and library as the platform. A sign-in's server CPU is
//! reported as a multiple of this; it differs from machine to machine, so it is measured
//! in the same run as the sign-ins, never taken from elsewhere. L2 adds the PIN's own: one
//! OPRF evaluation of a blinded PIN and one Ed25519 verification of the PIN proof, timed
//! the same way, so the L2 ÷ L1 ratio of the crypto alone is known beside the measured one.

use std::time::Instant;

use clap::Args;
use cyberid_crypto::jose::SigningKey;
use cyberid_crypto::pin::{self, Pin, PinOprfSecret};
use cyberid_protocol::ErrorCode;
use serde_json::json;

use crate::output::{CliResult, Failure, print_json};

/// Rounds of `--count` operations each; the figures are the rounds' medians.
const ROUNDS: usize = 5;

/// What the platform signs and verifies is a few hundred bytes (header and claims, base64url).
const APPROVAL_SIGNING_INPUT_BYTES: usize = 420;
const ID_TOKEN_SIGNING_INPUT_BYTES: usize = 560;

#[derive(Args)]
pub struct FloorArgs {
    /// Times each operation is run per round (five rounds).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    count: u32,
    #[arg(long)]
    pub(crate) json: bool,
}

pub fn run(args: FloorArgs) -> CliResult {
    let failed = |what: &str| {
        Failure::new(
            ErrorCode::BenchFailed,
            format!("the crypto floor could not be measured: {what}"),
        )
    };
    let (device_key, _) = SigningKey::generate().map_err(|_| failed("device key"))?;
    let (issuer_key, _) = SigningKey::generate().map_err(|_| failed("issuer key"))?;
    let approval = vec![b'a'; APPROVAL_SIGNING_INPUT_BYTES];
    let id_token = vec![b'i'; ID_TOKEN_SIGNING_INPUT_BYTES];
    let signature = device_key.sign(&approval).map_err(|_| failed("approval"))?;
    let verifying_key = device_key.verifying_key();

    // The PIN: a wallet's blinded PIN, and a proof by the key it unblinds to.
    let oprf = PinOprfSecret::new(rand::random());
    let key_id: [u8; 16] = rand::random();
    let pin_digits = Pin::parse("480315").map_err(|_| failed("PIN"))?;
    let (blinding, blinded_pin) = pin::blind(&pin_digits).map_err(|_| failed("blinding"))?;
    let evaluated = oprf
        .evaluate(&key_id, &blinded_pin)
        .map_err(|_| failed("evaluation"))?;
    let pin_key = blinding
        .finish(&pin_digits, &evaluated)
        .map_err(|_| failed("unblinding"))?;
    let pin_verifier = pin_key.verifier();
    let pin_proof = pin_key.sign(&approval);

    let count = args.count as usize;
    let mut rounds = Rounds::default();
    for _ in 0..ROUNDS {
        rounds.verify_us.push(time_per_op(count, || {
            verifying_key
                .verify(std::hint::black_box(&approval), &signature)
                .map_err(|_| failed("verification"))
        })?);
        rounds.sign_us.push(time_per_op(count, || {
            issuer_key
                .sign(std::hint::black_box(&id_token))
                .map(std::hint::black_box)
                .map_err(|_| failed("signature"))
        })?);
        rounds.pin_evaluate_us.push(time_per_op(count, || {
            oprf.evaluate(&key_id, std::hint::black_box(&blinded_pin))
                .map(std::hint::black_box)
                .map_err(|_| failed("PIN evaluation"))
        })?);
        rounds.pin_verify_us.push(time_per_op(count, || {
            pin::verify_proof(&pin_verifier, std::hint::black_box(&approval), &pin_proof)
                .map_err(|_| failed("PIN proof"))
        })?);
    }
    let round = |us: f64| (us * 100.0).round() / 100.0;
    let (verify, sign) = (median(&mut rounds.verify_us), median(&mut rounds.sign_us));
    let (pin_evaluate, pin_verify) = (
        median(&mut rounds.pin_evaluate_us),
        median(&mut rounds.pin_verify_us),
    );
    let floor = verify + sign;
    let l2_floor = floor + pin_evaluate + pin_verify;
    let report = json!({
        "operation": "floor",
        "rounds": ROUNDS,
        "per_round": count,
        "verify_us": round(verify),
        "sign_us": round(sign),
        "floor_us": round(floor),
        "pin_evaluate_us": round(pin_evaluate),
        "pin_verify_us": round(pin_verify),
        "l2_floor_us": round(l2_floor),
        "l2_over_l1": round(l2_floor / floor),
    });
    if args.json {
        print_json(&report);
    } else {
        println!(
            "crypto floor of a sign-in on this machine: {floor:.1} µs (ES256 verification {verify:.1} µs, signature {sign:.1} µs; medians of {ROUNDS} rounds of {count})"
        );
        println!(
            "at L2: {l2_floor:.1} µs, {:.2}× L1 (PIN OPRF evaluation {pin_evaluate:.1} µs, PIN proof verification {pin_verify:.1} µs)",
            l2_floor / floor
        );
    }
    Ok(())
}

#[derive(Default)]
struct Rounds {
    verify_us: Vec<f64>,
    sign_us: Vec<f64>,
    pin_evaluate_us: Vec<f64>,
    pin_verify_us: Vec<f64>,
}

/// Microseconds per call of `operation`, over `count` calls.
fn time_per_op<T>(
    count: usize,
    mut operation: impl FnMut() -> Result<T, Failure>,
) -> Result<f64, Failure> {
    let started = Instant::now();
    for _ in 0..count {
        operation()?;
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / count as f64)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
