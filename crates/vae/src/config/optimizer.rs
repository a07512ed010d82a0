//! The update rule and its hyper-parameters.

use std::fmt;
use std::str::FromStr;

use clap::{Arg, ArgMatches, Command, FromArgMatches};
use serde::{Deserialize, Serialize};

use super::cli::{non_negative, positive};

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
    /// Every rule, with the hyper-parameters it takes when no flag says otherwise: Adam and
    /// Adagrad with PyTorch's defaults, SGD with momentum 0.9.
    pub const RULES: [OptimizerKind; 3] = [
        OptimizerKind::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
        OptimizerKind::Sgd { momentum: 0.9 },
        OptimizerKind::Adagrad { eps: 1e-10 },
    ];

    /// The flags of the rules' own hyper-parameters, with their ids.
    pub const FLAGS: [(&'static str, &'static str); 3] =
        [("--betas", "betas"), ("--eps", "eps"), ("--momentum", "momentum")];

    /// Adam with PyTorch's defaults.
    pub fn adam() -> Self {
        Self::RULES[0]
    }

    /// True if this rule reads the flag of `id` (one of [`FLAGS`](Self::FLAGS)).
    pub fn uses(self, id: &str) -> bool {
        matches!(
            (self, id),
            (OptimizerKind::Adam { .. }, "betas" | "eps")
                | (OptimizerKind::Sgd { .. }, "momentum")
                | (OptimizerKind::Adagrad { .. }, "eps")
        )
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
    /// `adam`, `sgd` or `adagrad`, each with its [defaults](Self::RULES).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::RULES.into_iter().find(|r| r.name() == s).ok_or_else(|| {
            let names: Vec<_> = Self::RULES.iter().map(|r| r.name()).collect();
            format!("unknown optimizer '{s}' (expected {})", names.join(", "))
        })
    }
}

/// `beta1,beta2`, each in [0, 1).
fn betas(s: &str) -> Result<(f64, f64), String> {
    let bad = || format!("'{s}' is not two numbers in [0, 1) (like 0.9,0.999)");
    let (a, b) = s.split_once(',').ok_or_else(bad)?;
    let in_range = |v: &str| v.trim().parse::<f64>().ok().filter(|v| (0.0..1.0).contains(v)).ok_or_else(bad);
    Ok((in_range(a)?, in_range(b)?))
}

/// The rule's flags: `--optimizer` and the hyper-parameters of each rule, whose defaults
/// are the rule's own.
impl clap::Args for OptimizerKind {
    fn augment_args(cmd: Command) -> Command {
        cmd.arg(
            Arg::new("optimizer")
                .value_name("RULE")
                .long("optimizer")
                .default_value(Self::RULES[0].name())
                .value_parser(|s: &str| s.parse::<OptimizerKind>())
                .help("Optimizer: adam, sgd (momentum 0.9) or adagrad"),
        )
        .arg(
            Arg::new("betas")
                .value_name("BETA1,BETA2")
                .long("betas")
                .allow_hyphen_values(true)
                .value_parser(betas)
                .help("Adam's betas, as beta1,beta2 (default 0.9,0.999)"),
        )
        .arg(
            Arg::new("eps")
                .value_name("EPS")
                .long("eps")
                .value_parser(positive)
                .help("The eps of Adam (default 1e-8) or Adagrad (default 1e-10)"),
        )
        .arg(
            Arg::new("momentum")
                .value_name("MOMENTUM")
                .long("momentum")
                .value_parser(non_negative)
                .help("SGD's momentum (default 0.9)"),
        )
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for OptimizerKind {
    /// The rule's defaults, overridden by the flags given that it reads.
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let rule = m.get_one::<OptimizerKind>("optimizer").copied().unwrap_or(Self::RULES[0]);
        let given = |id: &str| m.get_one::<f64>(id).copied();
        Ok(match rule {
            OptimizerKind::Adam { beta1, beta2, eps } => {
                let (beta1, beta2) = m.get_one::<(f64, f64)>("betas").copied().unwrap_or((beta1, beta2));
                OptimizerKind::Adam { beta1, beta2, eps: given("eps").unwrap_or(eps) }
            }
            OptimizerKind::Sgd { momentum } => {
                OptimizerKind::Sgd { momentum: given("momentum").unwrap_or(momentum) }
            }
            OptimizerKind::Adagrad { eps } => OptimizerKind::Adagrad { eps: given("eps").unwrap_or(eps) },
        })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

/// An optimizer: its rule and the settings every rule shares.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    /// The rule and its own hyper-parameters.
    #[command(flatten)]
    pub kind: OptimizerKind,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3, value_parser = positive)]
    pub lr: f64,
    /// L2 weight decay added to every gradient as `weight_decay · p` (PyTorch's
    /// `weight_decay`).
    #[arg(long, default_value_t = 0.0, value_parser = non_negative)]
    pub weight_decay: f64,
    /// Decouple the weight decay from the gradient (Loshchilov & Hutter): each step first
    /// shrinks the parameters by `lr · weight_decay · p`, and the rule sees the loss's
    /// gradient alone (with adam, PyTorch's `AdamW`).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub decoupled_weight_decay: bool,
}

impl Default for OptimizerConfig {
    /// Adam at 1e-3, no weight decay: the flags' defaults.
    fn default() -> Self {
        super::cli::defaults()
    }
}
