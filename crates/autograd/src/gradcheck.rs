//! Gradient checking: analytic gradients against central finite differences, in `f64`.
//!
//! The function's output is reduced to a scalar with random weights, `Σ out·r`, so that the
//! upstream gradient is not uniform (a plain sum would hide, say, a transposed gradient of a
//! symmetric op). The full mode perturbs every input element; the fast mode compares
//! `rᵀ J u` for random directions `u`, as PyTorch's `gradcheck(fast_mode=True)` does.

use std::fmt;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::Tensor;

use crate::tape::{Graph, Var};

/// Which comparison [`gradcheck`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradcheckMode {
    /// Every element of every input, one central difference each.
    Full,
    /// This many random directions in the joint input space, one central difference each.
    Fast {
        /// Number of directions.
        directions: usize,
    },
}

/// Settings of [`gradcheck`].
#[derive(Clone, Copy, Debug)]
pub struct GradcheckConfig {
    /// Finite-difference step.
    pub eps: f64,
    /// Absolute tolerance of the pass/fail test `|a − n| ≤ atol + rtol·|n|`.
    pub atol: f64,
    /// Relative tolerance of the pass/fail test.
    pub rtol: f64,
    /// Full or fast.
    pub mode: GradcheckMode,
    /// Seed of the output weights and (fast mode) the directions.
    pub seed: u64,
}

impl Default for GradcheckConfig {
    fn default() -> Self {
        GradcheckConfig { eps: 1e-6, atol: 1e-7, rtol: 1e-6, mode: GradcheckMode::Full, seed: 0 }
    }
}

/// Where the worst disagreement occurred.
#[derive(Clone, Debug, PartialEq)]
pub struct Worst {
    /// Which input (full mode) or `None` for a direction (fast mode).
    pub input: Option<usize>,
    /// Row-major element index in that input, or the direction's number in fast mode.
    pub index: usize,
    /// The analytic derivative.
    pub analytic: f64,
    /// The finite-difference derivative.
    pub numeric: f64,
}

/// The outcome of [`gradcheck`].
#[derive(Clone, Debug)]
pub struct GradcheckReport {
    /// True when every comparison met `|a − n| ≤ atol + rtol·|n|`.
    pub passed: bool,
    /// The largest `|a − n| / max(|a|, |n|, 1)`: relative for derivatives of magnitude 1 or
    /// more, absolute below, so that derivatives that are zero up to rounding do not count
    /// as infinitely wrong.
    pub max_rel_error: f64,
    /// The largest `|a − n|` (infinite if a comparison was NaN).
    pub max_abs_error: f64,
    /// Where `max_rel_error` occurred (`None` if nothing was compared).
    pub worst: Option<Worst>,
    /// How many comparisons were made.
    pub checked: usize,
}

impl fmt::Display for GradcheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gradcheck {}: {} comparisons, max relative error {:.3e}, max absolute error {:.3e}",
            if self.passed { "passed" } else { "FAILED" },
            self.checked,
            self.max_rel_error,
            self.max_abs_error
        )?;
        if let Some(w) = &self.worst {
            match w.input {
                Some(i) => write!(f, " (worst at input {i}, element {})", w.index)?,
                None => write!(f, " (worst at direction {})", w.index)?,
            }
            write!(f, ": analytic {:.10e}, numeric {:.10e}", w.analytic, w.numeric)?;
        }
        Ok(())
    }
}

impl GradcheckReport {
    /// A report of no comparisons.
    fn empty() -> Self {
        GradcheckReport { passed: true, max_rel_error: 0.0, max_abs_error: 0.0, worst: None, checked: 0 }
    }

    /// Adds one comparison of an analytic derivative `a` with a numeric one `n`.
    fn record(&mut self, config: &GradcheckConfig, input: Option<usize>, index: usize, a: f64, n: f64) {
        let abs = (a - n).abs();
        let rel = abs / a.abs().max(n.abs()).max(1.0);
        self.checked += 1;
        if abs.is_nan() || abs > config.atol + config.rtol * n.abs() {
            self.passed = false;
        }
        // A NaN comparison counts as infinitely wrong (`f64::max` would drop it).
        self.max_abs_error = if abs.is_nan() { f64::INFINITY } else { self.max_abs_error.max(abs) };
        if rel > self.max_rel_error || rel.is_nan() || self.worst.is_none() {
            self.max_rel_error = if rel.is_nan() { f64::INFINITY } else { rel.max(self.max_rel_error) };
            self.worst = Some(Worst { input, index, analytic: a, numeric: n });
        }
    }
}

/// Compares the gradients `f` computes with central differences. `f` gets a graph and one
/// leaf per input and returns an output of any shape. Inputs may be views of any strides:
/// the analytic pass uses them as given, the numeric pass perturbs contiguous copies.
///
/// ```
/// use autograd::{gradcheck, GradcheckConfig};
/// use tensor::Tensor;
/// let x = Tensor::<f64>::from_vec(vec![0.3, -1.2, 2.0], &[3]);
/// let report = gradcheck(|_, v| v[0].sigmoid() * v[0], &[x], &GradcheckConfig::default());
/// assert!(report.passed, "{report}");
/// ```
pub fn gradcheck<F>(f: F, inputs: &[Tensor<f64>], config: &GradcheckConfig) -> GradcheckReport
where
    F: for<'g> Fn(&'g Graph<f64>, &[Var<'g, f64>]) -> Var<'g, f64>,
{
    let mut rng = StdRng::seed_from_u64(config.seed);
    // Analytic pass, on the inputs as given.
    let graph = Graph::new();
    let leaves: Vec<Var<'_, f64>> = inputs.iter().map(|t| graph.param(t.clone())).collect();
    let out = f(&graph, &leaves);
    let weights = Tensor::<f64>::randn(&out.shape(), &mut rng);
    let loss = (out * graph.constant(weights.clone())).sum();
    let grads = loss.backward();
    let analytic: Vec<Vec<f64>> = leaves.iter().map(|&l| grads.get_or_zeros(l).to_vec()).collect();

    // The weighted scalar at perturbed inputs, on a no-grad graph.
    let eval = |xs: &[Tensor<f64>]| -> f64 {
        let g = Graph::no_grad();
        let vs: Vec<Var<'_, f64>> = xs.iter().map(|t| g.constant(t.clone())).collect();
        f(&g, &vs).value().mul(&weights).sum().item()
    };
    let base: Vec<Vec<f64>> = inputs.iter().map(Tensor::to_vec).collect();
    let rebuild = |vals: &[Vec<f64>]| -> Vec<Tensor<f64>> {
        vals.iter().zip(inputs).map(|(v, t)| Tensor::from_vec(v.clone(), t.shape())).collect()
    };

    let mut report = GradcheckReport::empty();
    let mut record =
        |input: Option<usize>, index: usize, a: f64, n: f64| report.record(config, input, index, a, n);

    match config.mode {
        GradcheckMode::Full => {
            let mut vals = base.clone();
            for i in 0..inputs.len() {
                for j in 0..vals[i].len() {
                    let x0 = base[i][j];
                    vals[i][j] = x0 + config.eps;
                    let plus = eval(&rebuild(&vals));
                    vals[i][j] = x0 - config.eps;
                    let minus = eval(&rebuild(&vals));
                    vals[i][j] = x0;
                    record(Some(i), j, analytic[i][j], (plus - minus) / (2.0 * config.eps));
                }
            }
        }
        GradcheckMode::Fast { directions } => {
            for d in 0..directions {
                let dirs: Vec<Tensor<f64>> =
                    inputs.iter().map(|t| Tensor::randn(t.shape(), &mut rng)).collect();
                let shifted = |sign: f64| -> Vec<Vec<f64>> {
                    base.iter()
                        .zip(&dirs)
                        .map(|(b, u)| {
                            b.iter().zip(u.to_vec()).map(|(x, u)| x + sign * config.eps * u).collect()
                        })
                        .collect()
                };
                let plus = eval(&rebuild(&shifted(1.0)));
                let minus = eval(&rebuild(&shifted(-1.0)));
                let a: f64 = analytic
                    .iter()
                    .zip(&dirs)
                    .map(|(g, u)| g.iter().zip(u.to_vec()).map(|(g, u)| g * u).sum::<f64>())
                    .sum();
                record(None, d, a, (plus - minus) / (2.0 * config.eps));
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tolerance `atol + rtol·|n|` pinned at its edge, for positive and negative `n`.
    #[test]
    fn the_tolerance_is_atol_plus_rtol_times_the_numeric_value() {
        let cfg = GradcheckConfig { atol: 1e-3, rtol: 1e-2, ..Default::default() };
        for n in [2.0, -2.0, 0.0] {
            let tol = 1e-3 + 1e-2 * f64::abs(n);
            for (a, pass) in [
                (n + 0.99 * tol, true),
                (n - 0.99 * tol, true),
                (n + 1.01 * tol, false),
                (n - 1.01 * tol, false),
            ] {
                let mut r = GradcheckReport::empty();
                r.record(&cfg, Some(0), 0, a, n);
                assert_eq!(r.passed, pass, "a {a} n {n}");
            }
        }
        // Exactly at the tolerance passes (every number here is exact in binary).
        let cfg = GradcheckConfig { atol: 0.25, rtol: 0.5, ..Default::default() };
        let mut r = GradcheckReport::empty();
        r.record(&cfg, Some(0), 0, 3.25, 2.0);
        assert!(r.passed && r.max_abs_error == 1.25);
        // A NaN on either side fails.
        let mut r = GradcheckReport::empty();
        r.record(&cfg, Some(0), 0, f64::NAN, 1.0);
        assert!(!r.passed && r.max_rel_error == f64::INFINITY && r.max_abs_error == f64::INFINITY);
    }

    /// Relative error is `|a − n| / max(|a|, |n|, 1)`; the worst point is the first with the
    /// largest relative error, and the counts and maxima are exact.
    #[test]
    fn errors_and_the_worst_point_are_reported_exactly() {
        let cfg = GradcheckConfig::default();
        let mut r = GradcheckReport::empty();
        assert!(r.passed && r.worst.is_none() && r.checked == 0);
        r.record(&cfg, Some(0), 4, 0.2, 0.1); // rel 0.1 (floor 1), abs 0.1
        assert_eq!(r.worst, Some(Worst { input: Some(0), index: 4, analytic: 0.2, numeric: 0.1 }));
        r.record(&cfg, Some(1), 2, -3.0, -4.0); // rel 1/4, abs 1
        r.record(&cfg, Some(1), 3, 8.0, 6.5); // rel 1.5/8 = 0.1875, abs 1.5
        r.record(&cfg, Some(2), 0, 10.0, 7.5); // rel 0.25 again: not worse, so not the worst
        assert_eq!(r.checked, 4);
        assert!(!r.passed);
        assert_eq!(r.max_rel_error, 0.25);
        assert_eq!(r.max_abs_error, 2.5);
        assert_eq!(r.worst, Some(Worst { input: Some(1), index: 2, analytic: -3.0, numeric: -4.0 }));
        let shown = r.to_string();
        assert!(shown.starts_with("gradcheck FAILED: 4 comparisons, max relative error 2.500e-1"), "{shown}");
        assert!(shown.contains("(worst at input 1, element 2): analytic -3.0000000000e0"), "{shown}");
        let mut fast = GradcheckReport::empty();
        fast.record(&cfg, None, 7, 1.0, 1.0);
        assert!(fast.passed && fast.max_rel_error == 0.0);
        assert!(fast
            .to_string()
            .ends_with("(worst at direction 7): analytic 1.0000000000e0, numeric 1.0000000000e0"));
    }

    /// A function whose analytic gradient is wrong by a known amount: `y = c·x + (d·x)` with
    /// the second term detached, so the analytic derivative is `c·r` and the numeric one
    /// `(c + d)·r`, for the output weights `r` that gradcheck draws first from its seed.
    #[test]
    fn full_and_fast_modes_report_known_errors() {
        const C: f64 = 3.0;
        const D: f64 = 0.5;
        fn f<'g>(_: &'g Graph<f64>, v: &[Var<'g, f64>]) -> Var<'g, f64> {
            v[0].mul_scalar(C) + v[0].mul_scalar(D).detach()
        }
        let (c, d) = (C, D);
        let x = Tensor::<f64>::from_vec(vec![0.5, -1.0, 2.0, 0.25, -0.75], &[5]);
        let cfg = GradcheckConfig { seed: 9, ..Default::default() };
        let r = Tensor::<f64>::randn(&[5], &mut StdRng::seed_from_u64(9)).to_vec();
        let report = gradcheck(f, std::slice::from_ref(&x), &cfg);
        assert!(!report.passed && report.checked == 5);
        let rel = |j: usize| (d * r[j]).abs() / (c * r[j]).abs().max(((c + d) * r[j]).abs()).max(1.0);
        let worst = (0..5).fold(0, |w, j| if rel(j) > rel(w) { j } else { w });
        let w = report.worst.clone().unwrap();
        assert_eq!((w.input, w.index), (Some(0), worst));
        assert_eq!(w.analytic, c * r[worst]);
        assert!((w.numeric - (c + d) * r[worst]).abs() < 1e-8, "{report}");
        assert!((report.max_rel_error - rel(worst)).abs() < 1e-8, "{report}");
        let max_abs = r.iter().map(|r| (d * r).abs()).fold(0.0, f64::max);
        assert!((report.max_abs_error - max_abs).abs() < 1e-8, "{report}");

        // Fast mode: direction u gives analytic c·rᵀu and numeric (c + d)·rᵀu, with the
        // directions drawn after the weights.
        let cfg =
            GradcheckConfig { seed: 9, mode: GradcheckMode::Fast { directions: 3 }, ..Default::default() };
        let mut rng = StdRng::seed_from_u64(9);
        let _ = Tensor::<f64>::randn(&[5], &mut rng);
        let ru: Vec<f64> = (0..3)
            .map(|_| Tensor::<f64>::randn(&[5], &mut rng).to_vec().iter().zip(&r).map(|(u, r)| u * r).sum())
            .collect();
        let report = gradcheck(f, &[x], &cfg);
        assert!(!report.passed && report.checked == 3);
        let rel = |k: usize| (d * ru[k]).abs() / (c * ru[k]).abs().max(((c + d) * ru[k]).abs()).max(1.0);
        let worst = (0..3).fold(0, |w, k| if rel(k) > rel(w) { k } else { w });
        let w = report.worst.clone().unwrap();
        assert_eq!((w.input, w.index), (None, worst));
        assert!((w.analytic - c * ru[worst]).abs() < 1e-12);
        assert!((w.numeric - (c + d) * ru[worst]).abs() < 1e-8, "{report}");
    }

    #[test]
    fn a_wrong_gradient_is_caught() {
        // x.t() used where x was meant: y = sum(r ⊙ (x + xᵀ)) has gradient r + rᵀ; asking
        // gradcheck about a function whose analytic side we break by detaching half of it
        // must fail.
        let x = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
        let ok = gradcheck(|_, v| v[0] + v[0].t(), std::slice::from_ref(&x), &GradcheckConfig::default());
        assert!(ok.passed && ok.max_rel_error < 1e-8, "{ok}");
        let broken = gradcheck(|_, v| v[0] + v[0].t().detach(), &[x], &GradcheckConfig::default());
        assert!(!broken.passed, "{broken}");
        let w = broken.worst.unwrap();
        assert_eq!(w.input, Some(0));
    }

    #[test]
    fn fast_mode_agrees_and_catches_errors() {
        let x = Tensor::<f64>::from_vec(vec![0.1, -0.4, 0.9, 1.3, -2.0, 0.7], &[2, 3]);
        let cfg = GradcheckConfig { mode: GradcheckMode::Fast { directions: 4 }, ..Default::default() };
        let ok = gradcheck(|_, v| v[0].exp().matmul(v[0].t()), std::slice::from_ref(&x), &cfg);
        assert!(ok.passed && ok.checked == 4, "{ok}");
        let broken = gradcheck(|_, v| v[0].exp().matmul(v[0].t().detach()), &[x], &cfg);
        assert!(!broken.passed, "{broken}");
    }
}
