//! Standard-normal sampling by the ziggurat method (Marsaglia and Tsang, 2000).
//!
//! Generating a registry draws 128 normal values per record; Box–Muller spends a logarithm,
//! a square root and a sine/cosine on every pair, while the ziggurat needs one table
//! comparison and one multiplication for about 99% of draws, which makes bulk generation
//! several times faster.

use std::sync::OnceLock;

/// Number of layers; the layer index takes the low 7 bits of each 32-bit draw.
const LAYERS: usize = 128;
/// Right edge of the base layer and start of the tail, for 128 layers.
const R: f64 = 3.442_619_855_899;
/// Area of each layer (and of the base strip including the tail).
const V: f64 = 9.912_563_035_262_17e-3;
/// Scale of the 25-bit signed magnitude part of a draw.
const M: f64 = (1u32 << 24) as f64;

struct Tables {
    /// Acceptance bound per layer for the fast path.
    k: [i32; LAYERS],
    /// Width per unit of the magnitude, per layer.
    w: [f64; LAYERS],
    /// Density exp(-x²/2) at each layer's right edge.
    f: [f64; LAYERS],
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut k = [0i32; LAYERS];
        let mut w = [0f64; LAYERS];
        let mut f = [0f64; LAYERS];
        let mut dn = R;
        let mut tn = dn;
        let q = V / (-0.5 * dn * dn).exp();
        k[0] = ((dn / q) * M) as i32;
        k[1] = 0;
        w[0] = q / M;
        w[LAYERS - 1] = dn / M;
        f[0] = 1.0;
        f[LAYERS - 1] = (-0.5 * dn * dn).exp();
        for i in (1..LAYERS - 1).rev() {
            dn = (-2.0 * (V / dn + (-0.5 * dn * dn).exp()).ln()).sqrt();
            k[i + 1] = ((dn / tn) * M) as i32;
            tn = dn;
            f[i] = (-0.5 * dn * dn).exp();
            w[i] = dn / M;
        }
        Tables { k, w, f }
    })
}

/// A uniform value in (0, 1], from 53 random bits.
fn unit(rng: &mut (impl rand::RngCore + ?Sized)) -> f64 {
    ((rng.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// One standard-normal value.
pub(crate) fn standard_normal(rng: &mut (impl rand::RngCore + ?Sized)) -> f32 {
    sample(tables(), rng)
}

/// Fills `out` with independent standard-normal values.
pub(crate) fn fill_standard_normal(rng: &mut (impl rand::RngCore + ?Sized), out: &mut [f32]) {
    let t = tables();
    for x in out {
        *x = sample(t, rng);
    }
}

#[inline]
fn sample(t: &Tables, rng: &mut (impl rand::RngCore + ?Sized)) -> f32 {
    loop {
        let u = rng.next_u32();
        let i = (u as usize) & (LAYERS - 1);
        // The remaining 25 bits as a signed magnitude in [-2^24, 2^24).
        let j = (u as i32) >> 7;
        let x = f64::from(j) * t.w[i];
        if j.unsigned_abs() < t.k[i].unsigned_abs() {
            return x as f32;
        }
        if i == 0 {
            // The tail beyond R, by Marsaglia's exponential rejection.
            loop {
                let xt = -unit(rng).ln() / R;
                let yt = -unit(rng).ln();
                if yt + yt >= xt * xt {
                    let v = R + xt;
                    return (if j >= 0 { v } else { -v }) as f32;
                }
            }
        }
        // Wedge: accept if a uniform point under the layer falls under the density.
        if t.f[i] + unit(rng) * (t.f[i - 1] - t.f[i]) < (-0.5 * x * x).exp() {
            return x as f32;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn moments_and_tails_match_the_standard_normal() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let n = 1_000_000;
        let xs: Vec<f64> = (0..n)
            .map(|_| f64::from(standard_normal(&mut rng)))
            .collect();
        let nf = n as f64;
        let mean = xs.iter().sum::<f64>() / nf;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / nf;
        let kurt = xs.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / nf / (var * var);
        assert!(mean.abs() < 0.005, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "variance {var}");
        assert!((kurt - 3.0).abs() < 0.05, "kurtosis {kurt}");
        // P(|X| > 1) = 0.3173, P(|X| > 2) = 0.0455, P(|X| > R) = 0.000576 (the tail path).
        for (bound, p) in [(1.0, 0.317_31), (2.0, 0.045_50), (R, 0.000_576)] {
            let share = xs.iter().filter(|x| x.abs() > bound).count() as f64 / nf;
            let sd = (p * (1.0 - p) / nf).sqrt();
            assert!(
                (share - p).abs() < 5.0 * sd,
                "P(|X| > {bound}) = {share}, expected {p}"
            );
        }
        let positive = xs.iter().filter(|&&x| x > 0.0).count() as f64 / nf;
        assert!((positive - 0.5).abs() < 0.003);
    }
}
