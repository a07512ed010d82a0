//! The objective: log-likelihood terms, the analytic KL, the Monte Carlo ELBO with the
//! reparameterization or the score-function estimator, and the importance-weighted bound.

use autograd::{Graph, Var};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use tensor::{Element, Tensor};

pub use crate::config::{ElboConfig, Estimator, Objective};
use crate::model::{BoundVae, DecoderOut, Likelihood, Vae};

/// `ln 2π`.
pub const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// `log p(x|z)` per image for decoder outputs `dec` and images `x` (`[batch, d]`, or any
/// leading axes: `[k, batch, d]` gives `[k, batch]`), summed over the last axis.
///
/// - Bernoulli: `−Σ BCE-with-logits(logits, x)` (stable at any logit).
/// - Gaussian, unit variance: `−Σ ½(x−μ)² − ½·d·ln 2π`.
/// - Gaussian, learned variance: `−Σ [½ log σ² + (x−μ)²/(2σ²)] − ½·d·ln 2π`.
pub fn log_likelihood<'g, T: Element>(
    likelihood: Likelihood,
    dec: DecoderOut<'g, T>,
    x: Var<'g, T>,
) -> Var<'g, T> {
    let half = T::from_f64_lossy(0.5);
    let last = x.shape().len() - 1;
    let constant = T::from_f64_lossy(-0.5 * x.shape()[last] as f64 * LN_2PI);
    match likelihood {
        Likelihood::Bernoulli => -dec.out.bce_with_logits_sum(x),
        Likelihood::Gaussian => {
            (x - dec.out).square().sum_axis(last, false).mul_scalar(-half).add_scalar(constant)
        }
        Likelihood::GaussianLearned => {
            let raw = dec.logvar.expect("a learned-variance decoder outputs a log-variance");
            // σ² = e^raw + σ²_min, as c + softplus(raw − c) with c = ln σ²_min.
            let c = T::from_f64_lossy((PIXEL_SIGMA_MIN * PIXEL_SIGMA_MIN).ln());
            let logvar = raw.add_scalar(-c).softplus().add_scalar(c);
            log_normal_diag(x, dec.out, logvar)
        }
    }
}

/// `σ_min` of a learned-variance decoder, 1/255: its variance per pixel is `e^h + σ²_min`
/// for the decoder's output `h`. Pixels are stored as multiples of 1/255,
/// and where the data never varies (MNIST's always-black border) an unbounded variance
/// head shrinks σ without end, so the log-density, and the ELBO, grows without bound while
/// nothing is learned. With the floor a pixel's log-density is at most
/// `ln 255 − ½ ln 2π ≈ 4.62` nats: a Gaussian narrower than the step between two pixel
/// levels would describe values the data cannot take.
pub const PIXEL_SIGMA_MIN: f64 = 1.0 / 255.0;

/// `KL(N(mu, diag e^logvar) ‖ N(0, I)) = −½ Σ (1 + logvar − mu² − e^logvar)` per row.
pub fn kl_standard_normal<'g, T: Element>(mu: Var<'g, T>, logvar: Var<'g, T>) -> Var<'g, T> {
    // `mu * mu` rather than `mu.square()`: the product adds `g·mu` into mu's gradient twice,
    // as the reference runs in the README did; `square` adds `2g·mu` once, which rounds
    // differently in the last bit.
    let one_plus = logvar.add_scalar(T::one()) - mu * mu - logvar.exp();
    one_plus.sum_axis(1, false).mul_scalar(T::from_f64_lossy(-0.5))
}

/// `log N(z; mu, diag e^logvar)` per row (summed over the last axis).
pub fn log_normal_diag<'g, T: Element>(z: Var<'g, T>, mu: Var<'g, T>, logvar: Var<'g, T>) -> Var<'g, T> {
    let last = z.shape().len() - 1;
    let quad = logvar + (z - mu).square() * (-logvar).exp();
    quad.sum_axis(last, false)
        .mul_scalar(T::from_f64_lossy(-0.5))
        .add_scalar(T::from_f64_lossy(-0.5 * z.shape()[last] as f64 * LN_2PI))
}

/// One batch's objective: the scalar to minimize and the batch sums of its parts.
pub struct ElboTerms<'g, T: Element> {
    /// The scalar whose gradient is the chosen estimator of `−∇ ELBO_β` summed over the
    /// batch. For [`Estimator::Reparam`] its value is the β-weighted negative ELBO; for
    /// [`Estimator::Score`] and [`Estimator::ScoreBaseline`] it is a surrogate whose value
    /// means nothing.
    pub loss: Var<'g, T>,
    /// `−E_q[log p(x|z)]` (the L-sample average) summed over the batch.
    pub recon: f64,
    /// `KL(q(z|x) ‖ p(z))` summed over the batch.
    pub kl: f64,
}

impl<T: Element> ElboTerms<'_, T> {
    /// The negative ELBO (β = 1) summed over the batch: `recon + kl`.
    pub fn neg_elbo(&self) -> f64 {
        self.recon + self.kl
    }
}

/// Draws the `L` noise tensors `eps ~ N(0, I)` of shape `[batch, latent]`.
pub fn sample_noise<T: Element, R: Rng + ?Sized>(
    samples: usize,
    batch: usize,
    latent: usize,
    rng: &mut R,
) -> Vec<Tensor<T>>
where
    StandardNormal: Distribution<T>,
{
    (0..samples).map(|_| Tensor::randn(&[batch, latent], rng)).collect()
}

/// The Monte Carlo objective for images `x` with the given noise (one `[batch, latent]`
/// tensor per sample), so that it is a deterministic function of the parameters.
pub fn elbo_with_noise<'g, T: Element>(
    model: &BoundVae<'_, 'g, T>,
    x: Var<'g, T>,
    noise: &[Tensor<T>],
    config: &ElboConfig,
) -> ElboTerms<'g, T> {
    assert!(!noise.is_empty(), "elbo: at least one noise sample is needed");
    let graph = x.graph();
    let likelihood = model.config().likelihood;
    let (mu, logvar) = model.encode(x);
    let kl = kl_standard_normal(mu, logvar).sum();
    let mut recon_sum: Option<Var<'g, T>> = None;
    let mut recon_value = 0.0;
    // The score function's baseline, log p(x | z = mu) per image, held fixed.
    let baseline = (config.estimator == Estimator::ScoreBaseline)
        .then(|| log_likelihood(likelihood, model.decode(mu.detach()), x).detach());
    let inv_l = T::from_f64_lossy(1.0 / noise.len() as f64);
    let beta = T::from_f64_lossy(config.beta);
    // Several reparameterized draws go through the decoder as one batch of matrix products.
    if config.estimator == Estimator::Reparam && noise.len() > 1 {
        let (k, batch, latent, d) = (noise.len(), mu.shape()[0], mu.shape()[1], x.shape()[1]);
        let draws: Vec<T> = noise.iter().flat_map(|e| e.to_vec()).collect();
        let eps = graph.constant(Tensor::from_vec(draws, &[k, batch, latent]));
        let z = model.reparameterize(mu, logvar, eps).reshape(&[k * batch, latent]);
        let dec = decode_per_draw(model, z, k, batch, d);
        let ll = log_likelihood(likelihood, dec, x.broadcast_to(&[k, batch, d])).sum();
        let recon = -ll.value().item().to_f64_lossless() / k as f64;
        let loss = (-ll).mul_scalar(inv_l) + kl.mul_scalar(beta);
        return ElboTerms { loss, recon, kl: kl.value().item().to_f64_lossless() };
    }
    for eps in noise {
        let eps = graph.constant(eps.clone());
        let z = model.reparameterize(mu, logvar, eps);
        let term = match config.estimator {
            Estimator::Reparam => {
                let ll = log_likelihood(likelihood, model.decode(z), x).sum();
                recon_value -= ll.value().item().to_f64_lossless();
                -ll
            }
            Estimator::Score | Estimator::ScoreBaseline => {
                let z = z.detach();
                let ll = log_likelihood(likelihood, model.decode(z), x);
                let logq = log_normal_diag(z, mu, logvar);
                recon_value -= ll.sum().value().item().to_f64_lossless();
                // d/dφ of (f(z) − b)·log q(z|x) with f and b held fixed: the REINFORCE term.
                let f = match baseline {
                    Some(b) => ll.detach() - b,
                    None => ll.detach(),
                };
                -(ll + f * logq).sum()
            }
        };
        recon_sum = Some(match recon_sum {
            Some(s) => s + term,
            None => term,
        });
    }
    let loss = recon_sum.expect("one sample").mul_scalar(inv_l) + kl.mul_scalar(beta);
    ElboTerms { loss, recon: recon_value / noise.len() as f64, kl: kl.value().item().to_f64_lossless() }
}

/// `log w = log p(x|z) + log p(z) − log q(z|x)` for `k` draws of z per image, `[k, batch]`,
/// with `eps` (`[k, batch, latent]`) the standard normal noise of the draws. All `k·batch`
/// codes go through the decoder as one batch of matrix products. Since
/// `(z − mu)/σ = eps`, `log q(z|x) = −½ Σ (eps² + logvar) − ½·d·ln 2π` exactly, as a
/// function of the encoder's outputs. Also returns `log p(x|z)`, `[k, batch]`.
///
/// With stochastic layers above the first, `z = (z₁, …, z_L)` is drawn up the chain
/// `q(z₁|x) q(z₂|z₁) …`, `eps` holds every layer's noise side by side
/// (`[k, batch, Σ latent sizes]`, the data side first), and
/// `log w = log p(x|z₁) + Σ log p(z_{l−1}|z_l) + log p(z_L) − Σ log q(z_l|z_{l−1})`.
pub fn log_weights<'g, T: Element>(
    model: &BoundVae<'_, 'g, T>,
    x: Var<'g, T>,
    eps: &Tensor<T>,
) -> (Var<'g, T>, Var<'g, T>) {
    let graph = x.graph();
    let (k, batch) = (eps.shape()[0], eps.shape()[1]);
    let sizes = model.latent_sizes();
    assert_eq!(eps.shape()[2], sizes.iter().sum::<usize>(), "log_weights: noise for every stochastic layer");
    let d = x.shape()[1];
    let (half, neg_half) = (T::from_f64_lossy(0.5), T::from_f64_lossy(-0.5));
    let c = |units: usize| T::from_f64_lossy(-0.5 * units as f64 * LN_2PI);
    let rows = |v: Var<'g, T>| v.reshape(&[k, batch]);
    // Layer l's noise, and Σ eps² per draw as a constant `[k, batch]`.
    let mut offset = 0;
    let mut noise = |units: usize| {
        let e = eps.narrow(2, offset, units);
        offset += units;
        (graph.constant(e.contiguous()), graph.constant(e.square().sum_axis(2, false)))
    };
    // z₁ from the images: one encoder pass for all k draws.
    let (mu, logvar) = model.encode(x);
    let (e1, sq1) = noise(sizes[0]);
    let mut z = (mu + logvar.mul_scalar(half).exp() * e1).reshape(&[k * batch, sizes[0]]);
    let dec = decode_per_draw(model, z, k, batch, d);
    let log_px = log_likelihood(model.config().likelihood, dec, x.broadcast_to(&[k, batch, d]));
    let mut log_q = (sq1 + logvar.sum_axis(1, false)).mul_scalar(neg_half).add_scalar(c(sizes[0]));
    let mut log_w = log_px;
    for l in 0..model.upper_layers() {
        let units = sizes[l + 1];
        let (mu, logvar) = model.encode_upper(l, z);
        let (e, sq) = noise(units);
        let above = mu + logvar.mul_scalar(half).exp() * e.reshape(&[k * batch, units]);
        log_q = log_q + (sq + rows(logvar.sum_axis(1, false))).mul_scalar(neg_half).add_scalar(c(units));
        let (pm, plogvar) = model.prior_upper(l, above);
        log_w = log_w + rows(log_normal_diag(z, pm, plogvar));
        z = above;
    }
    let top = *sizes.last().expect("one layer at least");
    let log_pz = rows((z * z).sum_axis(1, false).mul_scalar(neg_half).add_scalar(c(top)));
    (log_w + log_pz - log_q, log_px)
}

/// The decoder's outputs for `k` draws of codes per image, `z` being `[k·batch, latent]`,
/// as `[k, batch, d]`: each draw against its image, the images broadcast over the draws
/// (read in place, not copied k times).
fn decode_per_draw<'g, T: Element>(
    model: &BoundVae<'_, 'g, T>,
    z: Var<'g, T>,
    k: usize,
    batch: usize,
    d: usize,
) -> DecoderOut<'g, T> {
    let dec = model.decode(z);
    let per_draw = |v: Var<'g, T>| v.reshape(&[k, batch, d]);
    DecoderOut { out: per_draw(dec.out), logvar: dec.logvar.map(per_draw) }
}

/// The log-weight objectives for noise `eps` (`[k, batch, latent]`): for
/// [`Objective::Iwae`] the loss is `−Σ_images log (1/k) Σ_k w`, for [`Objective::ElboMc`]
/// `−Σ_images (1/k) Σ_k log w`. The terms report the Monte Carlo ELBO (its
/// reconstruction and KL parts) either way.
pub fn log_weight_bound<'g, T: Element>(
    model: &BoundVae<'_, 'g, T>,
    x: Var<'g, T>,
    eps: &Tensor<T>,
    objective: Objective,
) -> ElboTerms<'g, T> {
    let k = eps.shape()[0];
    let (log_w, log_px) = log_weights(model, x, eps);
    let per_image = match objective {
        Objective::Iwae => log_w.logsumexp_axis(0, false).add_scalar(T::from_f64_lossy(-(k as f64).ln())),
        Objective::ElboMc | Objective::Elbo => log_w.mean_axis(0, false),
    };
    let mean = |v: Var<'g, T>| v.value().sum().item().to_f64_lossless() / k as f64;
    let (sum_w, sum_px) = (mean(log_w), mean(log_px));
    ElboTerms { loss: -per_image.sum(), recon: -sum_px, kl: sum_px - sum_w }
}

/// The objective of `config` for images `x`, with fresh noise from `rng`.
pub fn elbo<'g, T: Element, R: Rng + ?Sized>(
    model: &BoundVae<'_, 'g, T>,
    x: Var<'g, T>,
    config: &ElboConfig,
    rng: &mut R,
) -> ElboTerms<'g, T>
where
    StandardNormal: Distribution<T>,
{
    let (k, batch, latent) = (config.samples.max(1), x.shape()[0], model.config().latent);
    match config.objective {
        // One sample (the usual case) needs no list: the same draw as `sample_noise(1, ..)`.
        Objective::Elbo if k == 1 => {
            elbo_with_noise(model, x, std::slice::from_ref(&Tensor::randn(&[batch, latent], rng)), config)
        }
        Objective::Elbo => elbo_with_noise(model, x, &sample_noise(k, batch, latent, rng), config),
        objective => {
            let units = model.latent_sizes().iter().sum();
            log_weight_bound(model, x, &Tensor::randn(&[k, batch, units], rng), objective)
        }
    }
}

/// Importance-weighted estimates of `log p(x)` per image (`[batch]`):
/// `log (1/k) Σᵢ p(x, zᵢ)/q(zᵢ|x)` with `zᵢ ~ q(z|x)`, a lower bound that tightens as `k`
/// grows (Burda et al.). All samples of a chunk of images go through the decoder as one
/// batch of matrix products; at most `max_rows` decoder rows are live at once. The noise is
/// drawn on the pool's threads ([`Tensor::randn_blocks`]), so the estimates do not depend on
/// the pool.
pub fn iwae_log_likelihood<T: Element, R: Rng + ?Sized>(
    model: &Vae<T>,
    x: &Tensor<T>,
    k: usize,
    max_rows: usize,
    rng: &mut R,
) -> Tensor<T>
where
    StandardNormal: Distribution<T>,
{
    let (batch, units) = (x.shape()[0], model.latent_sizes().iter().sum::<usize>());
    // Running log Σ w over sample chunks, per image.
    let mut acc = Tensor::full(&[batch], T::neg_infinity());
    let chunk = (max_rows / batch.max(1)).clamp(1, k.max(1));
    let mut done = 0;
    while done < k {
        let kc = chunk.min(k - done);
        let eps = Tensor::<T>::randn_blocks(&[kc, batch, units], rng);
        let g = Graph::no_grad();
        let log_w = log_weights(&model.bind(&g), g.constant(x.clone()), &eps).0.value();
        let chunk_lse = log_w.logsumexp_axis(0, false);
        acc = Tensor::from_vec(
            acc.to_vec()
                .into_iter()
                .zip(chunk_lse.to_vec())
                .map(|(a, b)| {
                    let m = a.max(b);
                    if m == T::neg_infinity() {
                        m
                    } else {
                        m + ((a - m).exp() + (b - m).exp()).ln()
                    }
                })
                .collect(),
            &[batch],
        );
        done += kc;
    }
    acc.add_scalar(T::from_f64_lossy(-(k as f64).ln()))
}
