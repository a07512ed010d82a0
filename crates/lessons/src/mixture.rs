//! The discrete-latent counterpart of the VAE: a mixture of `K` Bernoulli images,
//! `p(x) = Σₖ πₖ Πᵈ μₖᵈ^xᵈ (1 − μₖᵈ)^(1−xᵈ)`, fit by expectation–maximization. Because `z`
//! is one of `K` values, `∫ p(x, z) dz` is a sum: the log-likelihood is exact, the E-step
//! sets `q(z) = p(z|x)` exactly (the responsibilities, by logsumexp), and the M-step is in
//! closed form. A symmetric Beta prior on every pixel mean (`prior` pseudo-counts of 0 and
//! of 1) keeps the means off 0 and 1, so a test pixel never has probability 0.
//!
//! The same model is also fit by gradient ascent through [`autograd`]
//! ([`gradient_ascent`]), on the same objective, to show that both reach one optimum.

use autograd::Graph;
use rand::seq::SliceRandom;
use rand::Rng;
use tensor::{Element, Tensor};

use vae::config::{OptimizerConfig, OptimizerKind};
use vae::nn::ParamSet;
use vae::optim::Optimizer;

use vae::{Result, VaeError};

/// A mixture of Bernoulli images: mixing weights `π` (`[K]`, as logs) and pixel means
/// `μ` (`[K, D]`).
#[derive(Clone, Debug)]
pub struct BernoulliMixture<T: Element> {
    /// `log πₖ`, `[K]`.
    pub log_weights: Tensor<T>,
    /// `μₖᵈ`, the probability that pixel `d` is on in component `k`, `[K, D]`.
    pub means: Tensor<T>,
}

/// One EM iteration's numbers, per image of the training set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EmStep {
    /// `(1/N) Σₙ log p(xₙ)` before the iteration's update (nats).
    pub log_likelihood: f64,
    /// The objective EM increases: the log-likelihood plus the log prior of the means,
    /// per image, before the update.
    pub objective: f64,
}

impl<T: Element> BernoulliMixture<T> {
    /// `K` components started at `K` distinct training images blended with the mean image,
    /// `μ = 0.5·x + 0.4·x̄ + 0.05` (within [0.05, 0.95], so no mean starts at 0 or 1), with
    /// equal weights. An error unless `x` is `[N, D]` with `1 ≤ K ≤ N`.
    pub fn init<R: Rng + ?Sized>(x: &Tensor<T>, k: usize, rng: &mut R) -> Result<Self> {
        let n = match x.shape() {
            &[n, _] if (1..=n).contains(&k) => n,
            s => {
                return Err(VaeError::invalid(
                    "mixture",
                    format!("need 1 ≤ K ≤ N images [N, D] (K = {k}, images {s:?})"),
                ))
            }
        };
        let mut rows: Vec<usize> = (0..n).collect();
        rows.shuffle(rng);
        rows.truncate(k);
        let c = |v: f64| T::from_f64_lossy(v);
        let mean = x.mean_axis(0, true).mul_scalar(c(0.4)).add_scalar(c(0.05));
        let means = &x.select_rows(&rows).mul_scalar(c(0.5)) + &mean;
        let log_weights = Tensor::full(&[k], T::from_f64_lossy(-(k as f64).ln()));
        Ok(BernoulliMixture { log_weights, means })
    }

    /// Number of components.
    pub fn components(&self) -> usize {
        self.means.shape()[0]
    }

    /// `log πₖ + log p(xₙ | z = k)`, `[N, K]`, as two matrix products:
    /// `log p(x|k) = x · log μₖ + (1 − x) · log(1 − μₖ)`.
    ///
    /// A mean of exactly 0 or 1 (possible without a prior) has a log of −1e30 for the
    /// impossible value instead of −∞, so that a pixel that agrees with it adds
    /// 0 · (−1e30) = 0 (the convention 0 · log 0 = 0) and one that disagrees makes the image
    /// as good as impossible under that component. (One product of `x` with
    /// `log μ − log(1 − μ)` would be cheaper, but cancels ±1e30 against each other.)
    pub fn log_joint(&self, x: &Tensor<T>) -> Tensor<T> {
        let floor = T::from_f64_lossy(-1e30);
        let log_on = self.means.map(|m| m.ln().max(floor));
        let log_off = self.means.map(|m| (T::one() - m).ln().max(floor));
        let x_off = x.map(|v| T::one() - v);
        let per_component = &x.matmul(&log_on.t()) + &x_off.matmul(&log_off.t());
        &per_component + &self.log_weights
    }

    /// `Σₙ log p(xₙ)`, exact (a logsumexp over the components).
    pub fn log_likelihood(&self, x: &Tensor<T>) -> f64 {
        sum_f64(&self.log_joint(x).logsumexp_axis(1, false))
    }

    /// The log density of the Beta(`prior` + 1, `prior` + 1) prior over every pixel mean,
    /// up to its constant: `prior · Σ (log μ + log(1 − μ))`.
    pub fn log_prior(&self, prior: f64) -> f64 {
        if prior == 0.0 {
            return 0.0;
        }
        prior * sum_f64(&self.means.map(|m| m.ln() + (T::one() - m).ln()))
    }

    /// The E-step: responsibilities `q(z = k | xₙ) = p(z = k | xₙ)`, `[N, K]`, and
    /// `Σₙ log p(xₙ)`.
    pub fn e_step(&self, x: &Tensor<T>) -> (Tensor<T>, f64) {
        let joint = self.log_joint(x);
        let lse = joint.logsumexp_axis(1, true);
        ((&joint - &lse).exp(), sum_f64(&lse))
    }

    /// The M-step for responsibilities `r`: `πₖ = Nₖ / N` and
    /// `μₖ = (Σₙ rₙₖ xₙ + prior) / (Nₖ + 2·prior)`, with `Nₖ = Σₙ rₙₖ`. A component with no
    /// responsibility keeps its means and gets weight 0.
    pub fn m_step(&mut self, x: &Tensor<T>, r: &Tensor<T>, prior: f64) {
        let n = x.shape()[0] as f64;
        let counts = r.sum_axis(0, false);
        let sums = r.t().matmul(x);
        let a = T::from_f64_lossy(prior);
        let two_a = T::from_f64_lossy(2.0 * prior);
        let denom = counts.add_scalar(two_a).unsqueeze(1);
        let fresh = &sums.add_scalar(a) / &denom;
        let keep = counts.map(|c| if c > T::zero() { T::one() } else { T::zero() }).unsqueeze(1);
        self.means = &(&fresh * &keep) + &(&self.means * &keep.map(|k| T::one() - k));
        self.log_weights = counts.map(|c| (c / T::from_f64_lossy(n)).ln());
    }

    /// One EM iteration on `x`; returns the numbers of the model it started from.
    pub fn em_step(&mut self, x: &Tensor<T>, prior: f64) -> EmStep {
        let n = x.shape()[0] as f64;
        let (r, ll) = self.e_step(x);
        let objective = (ll + self.log_prior(prior)) / n;
        self.m_step(x, &r, prior);
        EmStep { log_likelihood: ll / n, objective }
    }
}

/// The sum of a tensor's elements, accumulated in `f64`.
fn sum_f64<T: Element>(t: &Tensor<T>) -> f64 {
    t.to_vec().iter().map(|v| v.to_f64_lossless()).sum()
}

/// Fits the mixture to `x` by gradient ascent on the same objective EM increases, the exact
/// log-likelihood plus the log prior, through the tape: the means as `sigmoid(θ)` and the
/// weights as `softmax(a)`, full-batch Adam for `steps` steps at learning rate `lr`, from
/// `start`. Returns the fitted mixture.
pub fn gradient_ascent(
    start: &BernoulliMixture<f64>,
    x: &Tensor<f64>,
    prior: f64,
    steps: usize,
    lr: f64,
) -> BernoulliMixture<f64> {
    let mut params = ParamSet::new();
    params.push("logits", start.means.map(|m| (m / (1.0 - m)).ln()));
    params.push("weight_logits", start.log_weights.clone());
    let config = OptimizerConfig { kind: OptimizerKind::adam(), lr, ..OptimizerConfig::default() };
    let mut optimizer = Optimizer::new(config, &params);
    let mut graph = Graph::new();
    for _ in 0..steps {
        let grads = {
            let g = &graph;
            let vars = params.bind(g);
            let (theta, a) = (vars[0], vars[1]);
            let xv = g.constant(x.clone());
            let (log_on, log_off) = (theta.log_sigmoid(), (-theta).log_sigmoid());
            let log_pi = a - a.logsumexp_axis(0, true);
            let log_px_k = xv.matmul((log_on - log_off).t()) + log_off.sum_axis(1, false) + log_pi;
            let mut objective = log_px_k.logsumexp_axis(1, false).sum();
            if prior != 0.0 {
                objective = objective + (log_on + log_off).sum().mul_scalar(prior);
            }
            // Adam minimizes: ascend the objective by descending its negative.
            let grads = (-objective).backward();
            vars.iter().map(|&v| grads.get(v).expect("both parameters take part").clone()).collect::<Vec<_>>()
        };
        graph.reset();
        optimizer.step(&mut params, &grads).expect("one gradient of its shape per parameter");
    }
    let theta = &params.tensors()[0];
    let a = &params.tensors()[1];
    BernoulliMixture { means: theta.sigmoid(), log_weights: a - &a.logsumexp_axis(0, true) }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    /// Direct loops over images and components.
    fn log_likelihood_by_loops(m: &BernoulliMixture<f64>, x: &Tensor<f64>) -> f64 {
        let (n, d) = (x.shape()[0], x.shape()[1]);
        let (mu, lw, xs) = (m.means.to_vec(), m.log_weights.to_vec(), x.to_vec());
        (0..n)
            .map(|i| {
                let terms: Vec<f64> = (0..m.components())
                    .map(|k| {
                        lw[k]
                            + (0..d)
                                .map(|j| {
                                    let (p, v) = (mu[k * d + j], xs[i * d + j]);
                                    v * p.ln() + (1.0 - v) * (1.0 - p).ln()
                                })
                                .sum::<f64>()
                    })
                    .collect();
                let top = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                top + terms.iter().map(|t| (t - top).exp()).sum::<f64>().ln()
            })
            .sum()
    }

    #[test]
    fn the_log_likelihood_is_the_sum_over_components() {
        let mut rng = StdRng::seed_from_u64(1);
        let x = Tensor::<f64>::rand_uniform(&[7, 5], 0.0, 1.0, &mut rng).map(|v| v.round());
        let m = BernoulliMixture::init(&x, 3, &mut rng).unwrap();
        let (r, ll) = m.e_step(&x);
        assert!((ll - log_likelihood_by_loops(&m, &x)).abs() < 1e-12);
        assert!((m.log_likelihood(&x) - ll).abs() < 1e-12);
        // Responsibilities are a distribution over components for every image.
        for row in r.sum_axis(1, false).to_vec() {
            assert!((row - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn the_m_step_is_the_weighted_average_with_pseudo_counts() {
        let x = Tensor::from_vec(vec![1.0, 0.0, 1.0, 1.0, 0.0, 0.0], &[3, 2]);
        let r = Tensor::from_vec(vec![1.0, 0.0, 0.5, 0.5, 0.0, 1.0], &[3, 2]);
        let mut m =
            BernoulliMixture::<f64> { log_weights: Tensor::zeros(&[2]), means: Tensor::full(&[2, 2], 0.5) };
        m.m_step(&x, &r, 1.0);
        // Component 0: N₀ = 1.5, Σ r x = (1.5, 0.5); μ = (2.5/3.5, 1.5/3.5).
        let mu = m.means.to_vec();
        let want = [2.5 / 3.5, 1.5 / 3.5, 1.5 / 3.5, 1.5 / 3.5];
        assert!(mu.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12), "{mu:?}");
        let pi: Vec<f64> = m.log_weights.to_vec().iter().map(|l| l.exp()).collect();
        assert!((pi[0] - 0.5).abs() < 1e-12 && (pi[1] - 0.5).abs() < 1e-12);
    }

    #[test]
    fn more_components_than_images_is_an_error() {
        let x = Tensor::<f64>::full(&[2, 3], 0.5);
        let mut rng = StdRng::seed_from_u64(0);
        let err = BernoulliMixture::init(&x, 3, &mut rng).unwrap_err().to_string();
        assert_eq!(err, "mixture: need 1 ≤ K ≤ N images [N, D] (K = 3, images [2, 3])");
        assert!(BernoulliMixture::init(&x, 0, &mut rng).is_err());
        assert!(BernoulliMixture::init(&Tensor::<f64>::zeros(&[6]), 1, &mut rng).is_err());
        assert!(BernoulliMixture::init(&x, 2, &mut rng).is_ok());
    }
}
