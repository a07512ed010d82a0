//! The update rule and its hyper-parameters.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which update rule, with the hyper-parameters of that rule.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "kebab-case", deny_unknown_fields)]
pub enum OptimizerKind {
    /// Adam (Kingma & Ba) with bias correction.
    Adam {
        /// Decay of the first moment (0.9).
        beta1: f64,
        /// Decay of the second moment (0.999).
        beta2: f64,
        /// Added to the denominator (1e-8).
        eps: f64,
    },
    /// Stochastic gradient descent with (heavy-ball) momentum.
    Sgd {
        /// Momentum (0 for plain SGD).
        momentum: f64,
    },
    /// Adagrad.
    Adagrad {
        /// Added to the denominator (1e-10).
        eps: f64,
    },
}

impl OptimizerKind {
    /// Adam with PyTorch's defaults.
    pub fn adam() -> Self {
        OptimizerKind::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }

    /// The name used on the command line and in checkpoints.
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerKind::Adam { .. } => "adam",
            OptimizerKind::Sgd { .. } => "sgd",
            OptimizerKind::Adagrad { .. } => "adagrad",
        }
    }

    /// Names of the per-parameter state tensors, as PyTorch names them.
    pub fn slots(&self) -> &'static [&'static str] {
        match self {
            OptimizerKind::Adam { .. } => &["exp_avg", "exp_avg_sq"],
            OptimizerKind::Sgd { .. } => &["momentum_buffer"],
            OptimizerKind::Adagrad { .. } => &["sum"],
        }
    }
}

impl fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OptimizerKind {
    type Err = String;
    /// `adam`, `sgd` (momentum 0.9) or `adagrad`, each with its usual defaults.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "adam" => Ok(OptimizerKind::adam()),
            "sgd" => Ok(OptimizerKind::Sgd { momentum: 0.9 }),
            "adagrad" => Ok(OptimizerKind::Adagrad { eps: 1e-10 }),
            _ => Err(format!("unknown optimizer '{s}' (expected adam, sgd or adagrad)")),
        }
    }
}

/// An optimizer: its rule and the settings every rule shares.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    /// The rule and its own hyper-parameters.
    pub kind: OptimizerKind,
    /// Learning rate.
    pub lr: f64,
    /// L2 penalty added to every gradient as `weight_decay · p` (PyTorch's `weight_decay`).
    pub weight_decay: f64,
}

impl Default for OptimizerConfig {
    /// Adam at 1e-3, no weight decay.
    fn default() -> Self {
        OptimizerConfig { kind: OptimizerKind::adam(), lr: 1e-3, weight_decay: 0.0 }
    }
}
