//! How far a trained encoder's aggregate posterior `q(z) = (1/N) Σ_n q(z | x_n)` is from the
//! prior `p(z) = N(0, I)` that samples are drawn from: its moments per latent dimension, a
//! kernel two-sample distance (MMD) jointly, and its density at the prior's samples, which
//! finds the "holes" — regions the prior covers and the encoder never uses, where the
//! decoder was never trained.

use autograd::Graph;
use rand::Rng;
use tensor::Tensor;
use vae::model::Vae;

/// The encoder's Gaussians for a set of images: the components of the aggregate posterior.
pub struct AggregatePosterior {
    /// Means, `[n, d]`.
    pub mu: Tensor<f64>,
    /// Variances, `[n, d]`.
    pub var: Tensor<f64>,
}

/// Per latent dimension: the aggregate posterior's mean and variance, and the KL divergence
/// from the Gaussian with those moments to the prior's `N(0, 1)`.
#[derive(Clone, Debug, PartialEq)]
pub struct DimensionGap {
    /// Mean of `q(z_j)`.
    pub mean: f64,
    /// Variance of `q(z_j)`: the mean of the encoder's variances plus the variance of its means.
    pub var: f64,
    /// `KL(N(mean, var) ‖ N(0, 1)) = ½(var + mean² − 1 − ln var)`.
    pub kl: f64,
}

impl AggregatePosterior {
    /// The encoder's `q(z₁ | x)` for each row of `x` (`[n, input]`), without a tape.
    pub fn of(model: &Vae<f32>, x: &Tensor<f32>) -> Self {
        let g = Graph::no_grad();
        let (mu, logvar) = model.bind(&g).encode(g.constant(x.clone()));
        AggregatePosterior { mu: mu.value().cast::<f64>(), var: logvar.value().cast::<f64>().exp() }
    }

    /// Images and latent dimensions.
    fn dims(&self) -> (usize, usize) {
        (self.mu.shape()[0], self.mu.shape()[1])
    }

    /// Moments and moment-matched KL of every latent dimension.
    pub fn per_dimension(&self) -> Vec<DimensionGap> {
        let n = self.dims().0 as f64;
        let mean = self.mu.sum_axis(0, false).mul_scalar(1.0 / n);
        let spread = (&self.mu - &mean).square().sum_axis(0, false).mul_scalar(1.0 / n);
        let var = &self.var.sum_axis(0, false).mul_scalar(1.0 / n) + &spread;
        mean.to_vec()
            .into_iter()
            .zip(var.to_vec())
            .map(|(m, v)| DimensionGap { mean: m, var: v, kl: 0.5 * (v + m * m - 1.0 - v.ln()) })
            .collect()
    }

    /// One draw of `z` from each image's `q(z | x)`: `n` draws from the aggregate posterior.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Tensor<f64> {
        let eps = Tensor::<f64>::randn(self.mu.shape(), rng);
        &self.mu + &(&eps * &self.var.sqrt())
    }

    /// `log q(z) − log p(z)` at each row of `z` (`[m, d]`): how much more (positive) or less
    /// (negative) density the aggregate posterior puts there than the prior. `q` is the
    /// mixture of the `n` Gaussians, summed stably (log-sum-exp).
    pub fn log_ratio(&self, z: &Tensor<f64>) -> Vec<f64> {
        let (n, d) = self.dims();
        let (mu, var) = (self.mu.to_vec(), self.var.to_vec());
        let ln_2pi = (2.0 * std::f64::consts::PI).ln();
        z.to_vec()
            .chunks_exact(d)
            .map(|z| {
                let logs: Vec<f64> = (0..n)
                    .map(|i| {
                        (0..d)
                            .map(|j| {
                                let (m, v) = (mu[i * d + j], var[i * d + j]);
                                -0.5 * ((z[j] - m).powi(2) / v + v.ln() + ln_2pi)
                            })
                            .sum()
                    })
                    .collect();
                let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let log_q = top + logs.iter().map(|l| (l - top).exp()).sum::<f64>().ln() - (n as f64).ln();
                let log_p: f64 = z.iter().map(|v| -0.5 * (v * v + ln_2pi)).sum();
                log_q - log_p
            })
            .collect()
    }
}

/// The squared maximum mean discrepancy between the samples `a` and `b` (rows, `[n, d]` and
/// `[m, d]`) under the Gaussian kernel `exp(−‖x − y‖² / (2·bandwidth²))`, unbiased (each
/// sample's own pairs left out): near 0 when both come from one distribution, larger the
/// more the distributions differ.
pub fn mmd2(a: &Tensor<f64>, b: &Tensor<f64>, bandwidth: f64) -> f64 {
    let d = a.shape()[1];
    let (a, b) = (a.to_vec(), b.to_vec());
    let k = |x: &[f64], y: &[f64]| {
        (-x.iter().zip(y).map(|(p, q)| (p - q).powi(2)).sum::<f64>() / (2.0 * bandwidth * bandwidth)).exp()
    };
    let within = |s: &[f64]| {
        let rows: Vec<&[f64]> = s.chunks_exact(d).collect();
        let n = rows.len() as f64;
        let total: f64 =
            rows.iter().enumerate().flat_map(|(i, x)| rows[i + 1..].iter().map(move |y| k(x, y))).sum();
        2.0 * total / (n * (n - 1.0))
    };
    let across: f64 = a.chunks_exact(d).flat_map(|x| b.chunks_exact(d).map(move |y| k(x, y))).sum();
    within(&a) + within(&b) - 2.0 * across / ((a.len() / d) as f64 * (b.len() / d) as f64)
}

/// For each row of `images` (`[n, pixels]`), the squared Euclidean distance to the nearest
/// row of `reference` (`[m, pixels]`): how far a generated image is from every real one.
pub fn nearest_distance(images: &Tensor<f32>, reference: &Tensor<f32>) -> Vec<f64> {
    let (a, b) = (images.cast::<f64>(), reference.cast::<f64>());
    // ‖a − b‖² = ‖a‖² − 2a·b + ‖b‖², with every a·b from one product.
    let cross = a.matmul(&b.t()).to_vec();
    let norms = |t: &Tensor<f64>| t.square().sum_axis(1, false).to_vec();
    let (na, nb) = (norms(&a), norms(&b));
    cross
        .chunks_exact(nb.len())
        .zip(&na)
        .map(|(row, &x)| {
            row.iter().zip(&nb).map(|(&c, &y)| (x - 2.0 * c + y).max(0.0)).fold(f64::INFINITY, f64::min)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn mmd_is_near_zero_for_one_distribution_and_grows_with_a_shift() {
        let mut rng = StdRng::seed_from_u64(2);
        let a = Tensor::<f64>::randn(&[300, 2], &mut rng);
        let b = Tensor::<f64>::randn(&[300, 2], &mut rng);
        let same = mmd2(&a, &b, 1.0);
        let shifted = mmd2(&a, &b.add_scalar(1.0), 1.0);
        assert!(same.abs() < 0.01, "{same}");
        assert!(shifted > 0.1, "{shifted}");
    }

    #[test]
    fn a_posterior_equal_to_the_prior_has_no_gap() {
        // Components N(0, 1) everywhere: q is the prior itself.
        let q = AggregatePosterior { mu: Tensor::zeros(&[50, 3]), var: Tensor::ones(&[50, 3]) };
        for g in q.per_dimension() {
            assert!(g.mean.abs() < 1e-12 && (g.var - 1.0).abs() < 1e-12 && g.kl.abs() < 1e-12);
        }
        let mut rng = StdRng::seed_from_u64(3);
        let z = Tensor::<f64>::randn(&[20, 3], &mut rng);
        assert!(q.log_ratio(&z).iter().all(|r| r.abs() < 1e-9));
        // Shrunk components leave the prior's tails empty: q/p is below 1 far out.
        let narrow =
            AggregatePosterior { mu: Tensor::zeros(&[50, 3]), var: Tensor::ones(&[50, 3]).mul_scalar(0.1) };
        let far = Tensor::from_vec(vec![2.0, 2.0, 2.0], &[1, 3]);
        assert!(narrow.log_ratio(&far)[0] < -10.0);
        assert!((narrow.per_dimension()[0].var - 0.1).abs() < 1e-12);
    }

    #[test]
    fn the_nearest_distance_is_to_the_closest_reference_row() {
        let reference = Tensor::from_vec(vec![0.0f32, 0.0, 1.0, 1.0, 3.0, 0.0], &[3, 2]);
        let images = Tensor::from_vec(vec![0.9f32, 1.2, 3.0, 0.0, -1.0, 0.0], &[3, 2]);
        let d = nearest_distance(&images, &reference);
        let want = [0.01 + 0.04, 0.0, 1.0];
        assert!(d.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6), "{d:?}");
    }
}
