//! Information for discrete distributions, in nats: the information `−log p(x)` of an
//! outcome, the entropy (its expectation), the cross-entropy and the Kullback–Leibler
//! divergence `KL(p ‖ q) = Σ p log(p/q)`, with the convention `0 · log 0 = 0`.

use vae::{Result, VaeError};

/// `H(p) = −Σ p log p`.
pub fn entropy(p: &[f64]) -> f64 {
    -p.iter().filter(|&&v| v > 0.0).map(|&v| v * v.ln()).sum::<f64>()
}

/// `H(p, q) = −Σ p log q` (infinite where `q` is 0 and `p` is not). An error when `p` and
/// `q` are over different numbers of outcomes.
pub fn cross_entropy(p: &[f64], q: &[f64]) -> Result<f64> {
    same_outcomes("cross_entropy", p, q)?;
    Ok(-p.iter().zip(q).filter(|(&a, _)| a > 0.0).map(|(&a, &b)| a * b.ln()).sum::<f64>())
}

fn same_outcomes(op: &'static str, p: &[f64], q: &[f64]) -> Result<()> {
    if p.len() == q.len() {
        Ok(())
    } else {
        Err(VaeError::invalid(op, format!("distributions over {} and {} outcomes", p.len(), q.len())))
    }
}

/// `KL(p ‖ q) = H(p, q) − H(p) = Σ p log(p/q)`: 0 exactly when `p = q`, positive otherwise
/// (Gibbs' inequality), and not symmetric. An error when `p` and `q` are over different
/// numbers of outcomes.
pub fn kl_divergence(p: &[f64], q: &[f64]) -> Result<f64> {
    same_outcomes("kl_divergence", p, q)?;
    Ok(p.iter().zip(q).filter(|(&a, _)| a > 0.0).map(|(&a, &b)| a * (a / b).ln()).sum())
}

/// The Jensen–Shannon divergence `½ KL(p ‖ m) + ½ KL(q ‖ m)` with `m = (p + q)/2`:
/// symmetric, 0 exactly when `p = q`, and at most `log 2`. An error when `p` and `q` are over
/// different numbers of outcomes.
pub fn js_divergence(p: &[f64], q: &[f64]) -> Result<f64> {
    same_outcomes("js_divergence", p, q)?;
    let m: Vec<f64> = p.iter().zip(q).map(|(a, b)| 0.5 * (a + b)).collect();
    Ok(0.5 * kl_divergence(p, &m)? + 0.5 * kl_divergence(q, &m)?)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A distribution over `n` outcomes from positive weights.
    fn distribution(n: usize) -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(1e-6f64..1.0, n).prop_map(|w| {
            let s: f64 = w.iter().sum();
            w.iter().map(|v| v / s).collect()
        })
    }

    proptest! {
        /// Gibbs' inequality: KL(p ‖ q) ≥ 0, with equality at q = p; and KL = H(p, q) − H(p).
        #[test]
        fn kl_is_never_negative((p, q) in (2usize..8).prop_flat_map(|n| (distribution(n), distribution(n)))) {
            let kl = kl_divergence(&p, &q).unwrap();
            prop_assert!(kl >= 0.0, "KL {kl}");
            prop_assert!(kl_divergence(&p, &p).unwrap().abs() < 1e-15);
            prop_assert!((kl - (cross_entropy(&p, &q).unwrap() - entropy(&p))).abs() < 1e-9);
        }
    }

    #[test]
    fn the_three_outcome_example() {
        let p = [0.3, 0.5, 0.2];
        let q = [0.1, 0.2, 0.7];
        assert_eq!(kl_divergence(&p, &p).unwrap(), 0.0);
        let (pq, qp) = (kl_divergence(&p, &q).unwrap(), kl_divergence(&q, &p).unwrap());
        let want_pq = 0.3 * 3f64.ln() + 0.5 * 2.5f64.ln() + 0.2 * (0.2f64 / 0.7).ln();
        assert!((pq - want_pq).abs() < 1e-15);
        assert!((pq - 0.5372).abs() < 5e-5 && (qp - 0.5838).abs() < 5e-5, "{pq} {qp}");
        assert!((pq - qp).abs() > 0.04, "KL is not symmetric: {pq} vs {qp}");
        // The uniform distribution has the largest entropy, ln 3.
        assert!((entropy(&[1.0 / 3.0; 3]) - 3f64.ln()).abs() < 1e-15);
        assert!(entropy(&p) < 3f64.ln() && entropy(&[1.0, 0.0, 0.0]) == 0.0);
        // Where q is 0 and p is not, p cannot be explained by q.
        assert_eq!(kl_divergence(&[0.5, 0.5], &[1.0, 0.0]).unwrap(), f64::INFINITY);
    }

    #[test]
    fn distributions_over_different_outcomes_are_an_error() {
        let err = kl_divergence(&[0.5, 0.5], &[1.0]).unwrap_err().to_string();
        assert_eq!(err, "kl_divergence: distributions over 2 and 1 outcomes");
        assert!(cross_entropy(&[1.0], &[0.5, 0.5]).is_err());
    }
}
