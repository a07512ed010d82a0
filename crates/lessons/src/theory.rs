//! The models below the VAE, trained with the same engine: linear regression as maximum
//! likelihood, the linear autoencoder (whose optimum spans the PCA subspace), and the
//! denoising autoencoder. The examples `linear_regression`, `pca_autoencoder` and
//! `denoising_autoencoder` drive them; `tests/theory.rs` checks the claims.

use autograd::{Graph, Var};
use rand::seq::SliceRandom;
use rand::{Rng, RngExt};
use rand_distr::{Distribution, StandardNormal};
use tensor::{Element, Tensor};

use vae::config::Activation;
use vae::elbo::LN_2PI;
use vae::nn::{Linear, ParamSet};
use vae::optim::{Optimizer, OptimizerConfig, OptimizerKind};
use vae::train::{train_step, Parameters, StepFailure};
use vae::{Result, VaeError};

/// The error of a failed step of a theory trainer, naming the step.
fn failed(f: StepFailure, step: usize) -> VaeError {
    VaeError::NonFinite(f.message(&format!("step {step}")))
}

/// The objective a linear regression is fitted with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RegressionLoss {
    /// Mean squared error, `Σ‖y − ŷ‖² / (n·out)`.
    Mse,
    /// Mean negative log-likelihood per point of `y ~ N(Wx + b, σ²I)` with a fixed σ.
    GaussianNll {
        /// The fixed noise standard deviation.
        sigma: f64,
    },
    /// Mean negative log-likelihood per point of `y ~ N(Wx + b, diag(σ²))`, with one σ per
    /// output learned beside `W` and `b` (as its logarithm, a parameter `log_sigma`).
    GaussianNllLearnedSigma,
}

/// A fitted linear regression.
#[derive(Clone, Debug)]
pub struct RegressionFit {
    /// `W`, `[out, in]`.
    pub weight: Tensor<f64>,
    /// `b`, `[out]`.
    pub bias: Tensor<f64>,
    /// The learned noise standard deviations, `[out]`, for
    /// [`RegressionLoss::GaussianNllLearnedSigma`].
    pub sigma: Option<Tensor<f64>>,
    /// The loss after the last step.
    pub loss: f64,
}

/// The loss of predictions `pred` against `y` (both `[n, out]`), averaged over rows;
/// `log_sigma` (`[out]`) is the learned log-σ of [`RegressionLoss::GaussianNllLearnedSigma`]
/// (σ = 1 without it).
fn regression_loss<'g>(
    loss: RegressionLoss,
    pred: Var<'g, f64>,
    y: Var<'g, f64>,
    log_sigma: Option<Var<'g, f64>>,
) -> Var<'g, f64> {
    let (n, out) = (y.shape()[0] as f64, y.shape()[1] as f64);
    let sq = (pred - y).square();
    match (loss, log_sigma) {
        (RegressionLoss::Mse, _) => sq.sum().mul_scalar(1.0 / (n * out)),
        // Σ [(y − ŷ)²/(2σ²) + ½ ln 2πσ²] / n: the same minimizer as the MSE for any σ.
        (RegressionLoss::GaussianNll { sigma }, _) => sq
            .sum()
            .mul_scalar(1.0 / (2.0 * sigma * sigma * n))
            .add_scalar(0.5 * out * (LN_2PI + 2.0 * sigma.ln())),
        // The same with σ_j = exp(log_sigma_j) for output j.
        (RegressionLoss::GaussianNllLearnedSigma, Some(ls)) => {
            let precision = ls.mul_scalar(-2.0).exp();
            sq.mul(precision).sum().mul_scalar(0.5 / n) + ls.sum().add_scalar(0.5 * out * LN_2PI)
        }
        (RegressionLoss::GaussianNllLearnedSigma, None) => {
            sq.sum().mul_scalar(0.5 / n).add_scalar(0.5 * out * LN_2PI)
        }
    }
}

/// Fits `y ≈ x·Wᵀ + b` by full-batch gradient descent (SGD with momentum 0.9) on `loss`
/// through the autograd engine, from `W = 0`, `b = 0` (and σ = 1); returns the fit, or an
/// error naming the step if the loss stops being finite (too large a learning rate).
pub fn fit_linear_regression(
    x: &Tensor<f64>,
    y: &Tensor<f64>,
    loss: RegressionLoss,
    steps: usize,
    lr: f64,
) -> Result<RegressionFit> {
    let mut params = ParamSet::new();
    let layer = Linear::zeros(&mut params, "linear", x.shape()[1], y.shape()[1]);
    let log_sigma = (loss == RegressionLoss::GaussianNllLearnedSigma)
        .then(|| params.push("log_sigma", Tensor::zeros(&[y.shape()[1]])));
    let sgd =
        OptimizerConfig { kind: OptimizerKind::Sgd { momentum: 0.9 }, lr, ..OptimizerConfig::default() };
    let mut opt = Optimizer::new(sgd, &params);
    let mut graph = Graph::new();
    let mut last = f64::NAN;
    for step in 1..=steps {
        (last, _) = train_step(&mut graph, &mut params, &mut opt, |g, _, vars| {
            let pred = layer.forward(vars, g.constant(x.clone()));
            let l = regression_loss(loss, pred, g.constant(y.clone()), log_sigma.map(|i| vars[i]));
            let value = l.value().item();
            (l, value)
        })
        .map_err(|f| failed(f, step))?;
    }
    let get = |name: &str| params.get(name).expect("the fit's own tensor").clone();
    Ok(RegressionFit {
        weight: get("linear.weight"),
        bias: get("linear.bias"),
        sigma: log_sigma.map(|_| get("log_sigma").exp()),
        loss: last,
    })
}

/// Trains a linear autoencoder `x̂ = x·Eᵀ·Dᵀ` (`E` `[k, d]`, `D` `[d, k]`, no biases) on the
/// rows of `x` (already centered) with the squared error, by Adam on shuffled minibatches.
/// Returns the decoder `D`, whose column space is the learned subspace, and the final mean
/// squared error per row.
pub fn train_linear_autoencoder<T: Element, R: Rng + ?Sized>(
    x: &Tensor<T>,
    k: usize,
    epochs: usize,
    batch: usize,
    lr: f64,
    rng: &mut R,
) -> Result<(Tensor<T>, f64)>
where
    StandardNormal: Distribution<T>,
{
    let (n, d) = (x.shape()[0], x.shape()[1]);
    let scale = T::from_f64_lossy(1.0 / (d as f64).sqrt());
    let mut params = ParamSet::new();
    let enc = params.push("encoder.weight", Tensor::randn(&[k, d], rng).mul_scalar(scale));
    let dec = params.push("decoder.weight", Tensor::randn(&[d, k], rng).mul_scalar(scale));
    let mut opt = Optimizer::new(OptimizerConfig { lr, ..OptimizerConfig::default() }, &params);
    let mut graph = Graph::new();
    let mut order: Vec<usize> = (0..n).collect();
    let mut last = f64::NAN;
    for _ in 0..epochs {
        order.shuffle(rng);
        let (mut total, mut seen) = (0.0, 0);
        for idx in order.chunks(batch.max(1)) {
            let xb = x.select_rows(idx);
            let (_, sum) = train_step(&mut graph, &mut params, &mut opt, |g, _, v| {
                let xv = g.constant(xb);
                let recon = xv.matmul(v[enc].t()).matmul(v[dec].t());
                let l = (recon - xv).square().sum();
                let sum = l.value().item().to_f64_lossless();
                (l.mul_scalar(T::from_f64_lossy(1.0 / idx.len() as f64)), sum)
            })
            .map_err(|f| failed(f, opt.steps as usize + 1))?;
            total += sum;
            seen += idx.len();
        }
        last = total / seen as f64;
    }
    Ok((params.tensors()[dec].clone(), last))
}

/// The covariance `XcᵀXc / n` of the rows of `x` after removing their mean, and that mean.
pub fn covariance(x: &Tensor<f64>) -> (Tensor<f64>, Tensor<f64>) {
    let n = x.shape()[0] as f64;
    let mean = x.mean_axis(0, false);
    let xc = x - &mean;
    (xc.t().matmul(&xc).mul_scalar(1.0 / n), mean)
}

/// `Σₙ log N(xₙ; mean, cov)` over the rows of `x`, for a positive-definite `cov`; `None`
/// if it is not. Maximized over `mean` and `cov` by [`covariance`]'s sample mean and
/// `1/n` covariance (the maximum-likelihood estimates).
pub fn gaussian_log_likelihood(x: &Tensor<f64>, mean: &Tensor<f64>, cov: &Tensor<f64>) -> Option<f64> {
    let (n, d) = (x.shape()[0] as f64, x.shape()[1] as f64);
    let eigen = crate::linalg::symmetric_eigenvalues(cov);
    if !eigen.iter().all(|&v| v > 0.0) {
        return None;
    }
    let log_det: f64 = eigen.iter().map(|v| v.ln()).sum();
    let xc = x - mean;
    // Σₙ (xₙ − μ)ᵀ Σ⁻¹ (xₙ − μ) = Σ of the elementwise product of Xc and Xc·Σ⁻¹.
    let solved = crate::linalg::solve_spd(cov, &xc.t().contiguous()).ok()?;
    let quad = (&xc * &solved.t()).sum().item();
    Some(-0.5 * (quad + n * log_det + n * d * vae::elbo::LN_2PI))
}

/// How a denoising autoencoder corrupts its inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Corruption {
    /// No corruption: a plain autoencoder.
    None,
    /// Each pixel is set to 0 with this probability (masking noise).
    Mask(f64),
    /// Gaussian noise of this standard deviation, clamped back to [0, 1].
    Gaussian(f64),
}

impl Corruption {
    /// A corrupted copy of `x` (values in [0, 1]).
    pub fn apply<R: Rng + ?Sized>(self, x: &Tensor<f32>, rng: &mut R) -> Tensor<f32> {
        match self {
            Corruption::None => x.clone(),
            Corruption::Mask(p) => {
                let kept =
                    x.to_vec().into_iter().map(|v| if rng.random::<f64>() < p { 0.0 } else { v }).collect();
                Tensor::from_vec(kept, x.shape())
            }
            Corruption::Gaussian(s) => {
                let noise = Tensor::<f32>::randn(x.shape(), rng).mul_scalar(s as f32);
                (x + &noise).clamp(0.0, 1.0)
            }
        }
    }
}

/// An MLP autoencoder `d → h (ReLU) → d (sigmoid)`, over-complete when `h > d`.
pub struct Autoencoder {
    /// `fc1.*` and `fc2.*`.
    pub params: ParamSet<f32>,
    fc1: Linear,
    fc2: Linear,
}

impl Autoencoder {
    /// A fresh autoencoder with PyTorch's `nn.Linear` initialization.
    pub fn new<R: Rng + ?Sized>(d: usize, h: usize, rng: &mut R) -> Self {
        let mut params = ParamSet::new();
        let fc1 = Linear::new(&mut params, "fc1", d, h, rng);
        let fc2 = Linear::new(&mut params, "fc2", h, d, rng);
        Autoencoder { params, fc1, fc2 }
    }

    fn logits<'g>(&self, vars: &[Var<'g, f32>], x: Var<'g, f32>) -> Var<'g, f32> {
        self.fc2.forward(vars, self.fc1.forward_act(vars, x, Activation::Relu))
    }

    /// Reconstructions (pixel means) of `x`, without a tape.
    pub fn reconstruct(&self, x: &Tensor<f32>) -> Tensor<f32> {
        let g = Graph::no_grad();
        let vars = self.params.bind(&g);
        self.logits(&vars, g.constant(x.clone())).value().sigmoid()
    }

    /// Trains to reconstruct clean rows of `x` from corrupted ones (BCE on logits), by Adam on
    /// shuffled minibatches; returns the last epoch's mean loss per row.
    pub fn train<R: Rng + ?Sized>(
        &mut self,
        x: &Tensor<f32>,
        corruption: Corruption,
        epochs: usize,
        batch: usize,
        lr: f64,
        rng: &mut R,
    ) -> Result<f64> {
        let n = x.shape()[0];
        let mut opt = Optimizer::new(OptimizerConfig { lr, ..OptimizerConfig::default() }, &self.params);
        let mut graph = Graph::new();
        let mut order: Vec<usize> = (0..n).collect();
        let mut last = f64::NAN;
        for _ in 0..epochs {
            order.shuffle(rng);
            let mut total = 0.0;
            for idx in order.chunks(batch.max(1)) {
                let clean = x.select_rows(idx);
                let noisy = corruption.apply(&clean, rng);
                let (_, sum) = train_step(&mut graph, self, &mut opt, |g, ae, vars| {
                    let logits = ae.logits(vars, g.constant(noisy));
                    let l = logits.bce_with_logits(g.constant(clean)).sum();
                    let sum = l.value().item() as f64;
                    (l.mul_scalar(1.0 / idx.len() as f32), sum)
                })
                .map_err(|f| failed(f, opt.steps as usize + 1))?;
                total += sum;
            }
            last = total / n as f64;
        }
        Ok(last)
    }
}

impl Parameters<f32> for Autoencoder {
    fn params(&self) -> &ParamSet<f32> {
        &self.params
    }
    fn params_mut(&mut self) -> &mut ParamSet<f32> {
        &mut self.params
    }
}

/// Mean over rows of the summed squared error between `a` and `b` (`[n, d]`).
pub fn mean_squared_error(a: &Tensor<f32>, b: &Tensor<f32>) -> f64 {
    (a - b).square().sum().item() as f64 / a.shape()[0] as f64
}
