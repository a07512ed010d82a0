//! The objective: the bound, its samples, its β, and the encoder-gradient estimator.

use serde::{Deserialize, Serialize};

use super::cli::{at_least_one, non_negative};

/// How the encoder's gradient of the reconstruction term is estimated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Estimator {
    /// The reparameterization trick: `z = mu + σ·eps` is differentiated through.
    #[default]
    Reparam,
    /// The score-function (REINFORCE) estimator: `z` is sampled and detached, and the encoder
    /// gets `f(z)·∇ log q(z|x)` with `f = log p(x|z)`, plus the analytic KL gradient.
    Score,
    /// The score-function estimator with a baseline (a control variate): the encoder gets
    /// `(f(z) − b)·∇ log q(z|x)` with `b = log p(x | z = mu)`, which does not depend on the
    /// draw, so the estimate stays unbiased (`E[∇ log q] = 0`) and its variance falls by as
    /// much as `f` varies less around `b` than around 0.
    ScoreBaseline,
}

named_enum!(Estimator, "estimator", Reparam = "reparam", Score = "score", ScoreBaseline = "score-baseline");

/// What training maximizes, from `k` samples of z per image (`samples`), with
/// `log w = log p(x|z) + log p(z) − log q(z|x)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// The ELBO with the KL term in closed form and the reconstruction averaged over the
    /// samples (pytorch/examples' objective; the default).
    #[default]
    Elbo,
    /// The ELBO as the mean over the samples of `log w` (Burda et al.'s "VAE" rows).
    ElboMc,
    /// The importance-weighted bound `log (1/k) Σ w` (Burda et al.'s "IWAE" rows).
    Iwae,
}

named_enum!(Objective, "objective", Elbo = "elbo", ElboMc = "elbo-mc", Iwae = "iwae");

/// Settings of the Monte Carlo objective.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct ElboConfig {
    /// What training maximizes: elbo (closed-form KL), elbo-mc (mean over the samples of
    /// log w) or iwae (the importance-weighted bound, log of the mean of w).
    #[arg(long, default_value_t)]
    // Absent in checkpoints written before it existed: the ELBO.
    #[serde(default)]
    pub objective: Objective,
    /// Samples of z per image in training: L of the ELBO, k of the bounds (alias --k).
    #[arg(long, visible_alias = "k", default_value_t = 1, value_parser = at_least_one)]
    pub samples: usize,
    /// Weight of the KL term (β; 1 for the ELBO).
    #[arg(long, default_value_t = 1.0, value_parser = non_negative)]
    pub beta: f64,
    /// Encoder gradient estimator: reparam, score (REINFORCE) or score-baseline (REINFORCE
    /// with the baseline log p(x | z = mu)).
    #[arg(long, default_value_t)]
    pub estimator: Estimator,
}

impl Default for ElboConfig {
    /// The closed-form ELBO, one sample, β = 1, reparameterized: the flags' defaults.
    fn default() -> Self {
        super::cli::defaults()
    }
}
