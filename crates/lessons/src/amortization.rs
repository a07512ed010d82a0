//! The amortization gap: how much ELBO a VAE's encoder leaves on the table against the best
//! `q(z|x)` of its family for each image. The encoder computes `q` for any image in one pass;
//! variational inference proper optimizes `q`'s parameters image by image. Starting from the
//! encoder's output and refining `(mu, log σ²)` per image by gradient ascent on the ELBO, with
//! the decoder fixed, gives a `q` at least as good, and the difference is (a lower bound on)
//! the amortization gap.

use autograd::{Graph, Var};
use rand::Rng;
use tensor::Tensor;
use vae::elbo::{kl_standard_normal, log_likelihood};
use vae::model::Vae;
use vae::nn::ParamSet;
use vae::optim::{Optimizer, OptimizerConfig};
use vae::train::train_step;
use vae::{Result, VaeError};

/// A diagonal Gaussian `q(z|x)` per image: means and log-variances, `[n, latent]` each.
#[derive(Clone, Debug)]
pub struct PerImageQ {
    /// Means.
    pub mu: Tensor<f32>,
    /// Log-variances.
    pub logvar: Tensor<f32>,
}

/// The encoder's `q(z|x)` for the rows of `x` (`[n, input]`), without a tape.
pub fn encoder_q(model: &Vae<f32>, x: &Tensor<f32>) -> PerImageQ {
    let g = Graph::no_grad();
    let (mu, logvar) = model.bind(&g).encode(g.constant(x.clone()));
    PerImageQ { mu: mu.value(), logvar: logvar.value() }
}

/// The negative ELBO summed over images, `KL(q ‖ p(z)) − E_q log p(x|z)`, the expectation
/// over the given noise draws (each `[n, latent]`).
fn neg_elbo<'g>(
    model: &Vae<f32>,
    g: &'g Graph<f32>,
    x: &Tensor<f32>,
    q: (Var<'g, f32>, Var<'g, f32>),
    noise: &[Tensor<f32>],
) -> Var<'g, f32> {
    let (mu, logvar) = q;
    let bound = model.bind(g);
    let x = g.constant(x.clone());
    let mut recon: Option<Var<'g, f32>> = None;
    for eps in noise {
        let z = Vae::reparameterize(mu, logvar, g.constant(eps.clone()));
        let ll = log_likelihood(model.config.likelihood, bound.decode(z), x).sum();
        recon = Some(recon.map_or(ll, |r| r + ll));
    }
    let recon = recon.expect("one noise draw at least").mul_scalar(1.0 / noise.len() as f32);
    kl_standard_normal(mu, logvar).sum() - recon
}

/// The ELBO per image of `q` for the rows of `x`, averaged over `samples` draws of `z` per
/// image from `rng`, without a tape.
pub fn elbo_per_image<R: Rng + ?Sized>(
    model: &Vae<f32>,
    x: &Tensor<f32>,
    q: &PerImageQ,
    samples: usize,
    rng: &mut R,
) -> f64 {
    let g = Graph::no_grad();
    let (mu, logvar) = (g.constant(q.mu.clone()), g.constant(q.logvar.clone()));
    // One draw at a time, so memory does not grow with `samples`.
    let samples = samples.max(1);
    let total: f64 = (0..samples)
        .map(|_| {
            let eps = Tensor::randn(q.mu.shape(), rng);
            f64::from(neg_elbo(model, &g, x, (mu, logvar), std::slice::from_ref(&eps)).value().item())
        })
        .sum();
    -total / (samples * x.shape()[0]) as f64
}

/// `q` refined for each image separately from `start`: `steps` steps of Adam at `lr` on the
/// images' summed negative ELBO (one fresh draw of `z` per image per step), the decoder
/// fixed. The images do not interact (each term depends on its own row only), so this is
/// per-image variational inference done in one batch. An error names the step at which the
/// ELBO stopped being finite.
pub fn refine<R: Rng + ?Sized>(
    model: &Vae<f32>,
    x: &Tensor<f32>,
    start: &PerImageQ,
    steps: usize,
    lr: f64,
    rng: &mut R,
) -> Result<PerImageQ> {
    let mut params = ParamSet::new();
    params.push("mu", start.mu.clone());
    params.push("logvar", start.logvar.clone());
    let mut opt = Optimizer::new(OptimizerConfig { lr, ..OptimizerConfig::default() }, &params);
    let mut graph = Graph::new();
    for step in 1..=steps {
        let eps = Tensor::randn(start.mu.shape(), rng);
        train_step(&mut graph, &mut params, &mut opt, |g, _, v| {
            let loss = neg_elbo(model, g, x, (v[0], v[1]), std::slice::from_ref(&eps));
            let value = f64::from(loss.value().item());
            (loss, value)
        })
        .map_err(|f| VaeError::NonFinite(f.message(&format!("refinement step {step}"))))?;
    }
    let get = |name: &str| params.get(name).expect("the refinement's own tensor").clone();
    Ok(PerImageQ { mu: get("mu"), logvar: get("logvar") })
}
