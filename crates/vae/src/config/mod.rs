//! One home for the configuration of a run: the model's shape, the objective, the
//! optimizer with all of its hyper-parameters, and the training loop. A [`TrainConfig`] is
//! serialized whole (serde, JSON) into every checkpoint and summary and read back exactly,
//! and [`TrainConfig::check_same_run`] is the one rule that decides whether a checkpoint
//! may be continued by a run.
//!
//! By concern: [`model`] (the network's shape), [`objective`], [`optimizer`], this module
//! (the run: data handling, schedule, validation, JSON), `budget` (multiply-adds,
//! parameters and memory) and `compare` (differences between configurations).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, VaeError};

/// Implements `as_str`, `Display` and `FromStr` for a fieldless enum from one list of names.
macro_rules! named_enum {
    ($ty:ident, $what:literal, $($variant:ident = $name:literal),+) => {
        impl $ty {
            /// The name used on the command line and in checkpoints.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(format!(
                        "unknown {} '{s}' (expected {})",
                        $what,
                        [$($name),+].join(", ")
                    )),
                }
            }
        }
    };
}

mod budget;
pub mod cli;
mod compare;
pub mod model;
pub mod objective;
pub mod optimizer;

pub use cli::Preset;
pub use compare::ConfigMismatch;
pub use model::*;
pub use objective::*;
pub use optimizer::*;

/// Everything that defines a training run. Each field carries its command-line flag, its
/// default and its parser (see [`cli`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The model's shape.
    #[command(flatten)]
    pub model: VaeConfig,
    /// Epochs to train in all (a resumed run continues up to this many); with a schedule,
    /// its length unless given.
    #[arg(long, default_value_t = 10, value_parser = cli::at_least_one)]
    pub epochs: usize,
    /// Images per optimizer step.
    #[arg(long, default_value_t = 128, value_parser = cli::at_least_one)]
    pub batch_size: usize,
    /// Seed of the initialization and of every random stream.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Draw binary pixels afresh each epoch (dynamic binarization) instead of using
    /// intensities as Bernoulli targets.
    #[arg(long)]
    pub binarize: bool,
    /// The objective.
    #[command(flatten)]
    pub elbo: ElboConfig,
    /// The optimizer.
    #[command(flatten)]
    pub optimizer: OptimizerConfig,
    /// Train on only the first this many training images.
    #[arg(long, value_parser = cli::at_least_one)]
    pub train_limit: Option<usize>,
    /// Learning-rate stages, run in order (empty: `optimizer.lr` throughout). A run shorter
    /// than the stages stops inside one (and may be resumed with more epochs); epochs after
    /// the last stage keep its rate.
    #[arg(
        id = "lr_schedule",
        long = "lr-schedule",
        value_name = "SCHEDULE",
        default_value = "none",
        value_parser = schedule,
        help = "Learning-rate schedule: none (--lr throughout) or burda (for i = 0…7, 3^i passes at 1e-4 · round(10^(1 − i/7), 1))"
    )]
    #[serde(default)]
    pub lr_stages: ::std::vec::Vec<LrStage>,
}

/// A learning-rate schedule by name: `none` (no stages) or `burda` ([`burda_schedule`]).
fn schedule(s: &str) -> std::result::Result<Vec<LrStage>, String> {
    match s {
        "none" => Ok(Vec::new()),
        "burda" => Ok(burda_schedule()),
        _ => Err(format!("unknown schedule '{s}' (expected none, burda)")),
    }
}

/// A stage of a learning-rate schedule: this many epochs at this rate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrStage {
    /// Epochs (passes over the training set) in the stage.
    pub epochs: usize,
    /// The learning rate throughout it.
    pub lr: f64,
}

/// Burda et al.'s schedule: for `i = 0…7`, `3^i` passes at `1e-4 · round(10^(1 − i/7), 1)`
/// (3,280 passes in all, from 1e-3 down to 1e-4).
pub fn burda_schedule() -> Vec<LrStage> {
    (0..8)
        .map(|i| {
            let factor = (10f64.powf(1.0 - i as f64 / 7.0) * 10.0).round() / 10.0;
            LrStage { epochs: 3usize.pow(i), lr: 1e-4 * factor }
        })
        .collect()
}

impl Default for TrainConfig {
    /// pytorch/examples' recipe: 784-400-20, Adam 1e-3, batch 128, 10 epochs, seed 1: the
    /// flags' defaults.
    fn default() -> Self {
        cli::defaults()
    }
}

/// Refuses a hyper-parameter that the optimizer's arithmetic, in `f32` as the parameters
/// are, would turn into 0 (a non-zero value) or infinity: the run would then not move the
/// parameters at all (a learning rate of 0, an eps that swamps every update) and say
/// nothing.
pub fn in_f32(what: &str, v: f64) -> Result<()> {
    let f = v as f32;
    let became = if f.is_infinite() {
        "infinite"
    } else if v != 0.0 && f == 0.0 {
        "0"
    } else {
        return Ok(());
    };
    Err(VaeError::Config(format!("{what} {v:e} is {became} in f32, the precision of the parameters")))
}

impl TrainConfig {
    /// Burda et al.'s recipe ([`Preset::Burda`]) with `objective`, `k` samples per image and
    /// `layers` (1 or 2) stochastic layers: 784-200-200-50 tanh (two layers:
    /// 784-200-200-100-100-100-50), σ = exp(linear), Glorot weights (the output bias at the
    /// mean image's logit), Adam with eps 1e-4, batch 20, dynamic binarization, the 3^i
    /// schedule over 3,280 passes.
    pub fn burda(objective: Objective, k: usize, layers: usize) -> Self {
        #[derive(clap::Parser)]
        struct Recipe {
            #[command(flatten)]
            config: TrainConfig,
        }
        let (k, layers) = (k.to_string(), layers.to_string());
        let argv = ["burda", "--preset", "burda", "--objective", objective.as_str(), "--k", &k];
        let argv = argv.into_iter().chain(["--stochastic-layers", &layers]);
        cli::parse_run::<Recipe>(argv, |r| &mut r.config).expect("Burda's recipe parses").config
    }

    /// Checks the settings that could not work.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(VaeError::Config(m.into()));
        let m = &self.model;
        if self.batch_size == 0 {
            return bad("batch size must be at least 1");
        }
        if m.latent == 0 || m.input == 0 || m.hidden.contains(&0) || m.decoder_layers().contains(&0) {
            return bad("input, hidden and latent sizes must be at least 1");
        }
        if self.elbo.samples == 0 {
            return bad("samples per image must be at least 1");
        }
        if m.upper.iter().any(|u| u.latent == 0 || u.hidden.contains(&0)) {
            return bad("the sizes of every stochastic layer must be at least 1");
        }
        if let Some(net) = m.conv.as_ref() {
            let halvings = 1usize.checked_shl(net.channels.len() as u32).unwrap_or(0);
            if net.channels.is_empty() || net.channels.contains(&0) {
                return bad(
                    "a convolutional model needs at least one convolution, each of at least 1 channel",
                );
            }
            if net.side * net.side != m.input {
                return Err(VaeError::Config(format!(
                    "a convolutional model needs square images of side {} ({} pixels), but the data has {} pixels",
                    net.side,
                    net.side * net.side,
                    m.input
                )));
            }
            if halvings == 0 || net.side % halvings != 0 {
                return Err(VaeError::Config(format!(
                    "{} stride-2 convolutions need an image side divisible by {}, got {}",
                    net.channels.len(),
                    halvings.max(2),
                    net.side
                )));
            }
        }
        if !m.upper.is_empty() && self.elbo.objective == Objective::Elbo {
            return bad(
                "more than one stochastic layer has no closed-form KL: use --objective elbo-mc or iwae",
            );
        }

        let o = &self.optimizer;
        if !(o.lr.is_finite() && o.lr > 0.0) {
            return bad("learning rate must be a positive number");
        }
        if !(o.weight_decay.is_finite() && o.weight_decay >= 0.0) {
            return bad("weight decay must be a non-negative number");
        }
        if o.decoupled_weight_decay && o.lr * o.weight_decay >= 1.0 {
            return bad("decoupled weight decay needs lr · weight decay below 1 (each step keeps 1 − lr · wd of every parameter)");
        }
        let eps = match o.kind {
            OptimizerKind::Adam { eps, .. } | OptimizerKind::Adagrad { eps } => Some(eps),
            OptimizerKind::Sgd { .. } => None,
        };
        for (what, v) in [("learning rate", Some(o.lr)), ("weight decay", Some(o.weight_decay)), ("eps", eps)]
        {
            v.map_or(Ok(()), |v| in_f32(what, v))?;
        }
        let rule_ok = match o.kind {
            OptimizerKind::Adam { beta1, beta2, eps } => {
                (0.0..1.0).contains(&beta1) && (0.0..1.0).contains(&beta2) && eps.is_finite() && eps > 0.0
            }
            OptimizerKind::Sgd { momentum } => (0.0..1.0).contains(&momentum),
            OptimizerKind::Adagrad { eps } => eps.is_finite() && eps > 0.0,
        };
        if !rule_ok {
            return bad("optimizer hyper-parameters out of range (betas and momentum in [0, 1), eps > 0)");
        }
        if !(self.elbo.beta.is_finite() && self.elbo.beta >= 0.0) {
            return bad("beta must be a non-negative number");
        }
        if self.elbo.objective != Objective::Elbo
            && (self.elbo.beta != 1.0 || self.elbo.estimator != Estimator::Reparam)
        {
            return bad(
                "the log-weight objectives (elbo-mc, iwae) take neither --beta nor the score estimator",
            );
        }
        if self.train_limit == Some(0) {
            return bad("train limit must be at least 1");
        }
        if self.lr_stages.iter().any(|s| !(s.lr.is_finite() && s.lr > 0.0 && s.lr as f32 > 0.0)) {
            return bad("every learning-rate stage needs a positive rate");
        }
        Ok(())
    }

    /// The stage (from 0) that ends when `epochs` epochs are done, if one does.
    pub fn stage_ending_at(&self, epochs: usize) -> Option<usize> {
        let mut end = 0;
        self.lr_stages.iter().position(|stage| {
            end += stage.epochs;
            end == epochs
        })
    }

    /// The learning rate of epoch `epoch` (counted from 0): its stage's, or `optimizer.lr`
    /// without a schedule.
    pub fn lr_at(&self, epoch: usize) -> f64 {
        let mut end = 0;
        for stage in &self.lr_stages {
            end += stage.epochs;
            if epoch < end {
                return stage.lr;
            }
        }
        self.lr_stages.last().map_or(self.optimizer.lr, |s| s.lr)
    }

    /// The configuration as JSON (stored in checkpoints and summaries).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a configuration is plain data")
    }

    /// Reads [`to_json`](Self::to_json)'s form back exactly; `None` if anything is missing,
    /// unknown or of the wrong type.
    pub fn from_json(v: &Value) -> std::result::Result<Self, serde_json::Error> {
        serde_json::from_value(v.clone())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn any_config() -> impl Strategy<Value = TrainConfig> {
        let model = (
            1usize..5000,
            prop::collection::vec(1usize..2000, 1..4),
            prop::option::of(prop::collection::vec(1usize..2000, 0..4)),
            1usize..500,
            prop::sample::select(Activation::ALL.to_vec()),
            prop_oneof![
                Just(Likelihood::Bernoulli),
                Just(Likelihood::Gaussian),
                Just(Likelihood::GaussianLearned)
            ],
            prop_oneof![Just(Init::Pytorch), Just(Init::Glorot)],
            prop_oneof![Just(SigmaHead::Logvar), Just(SigmaHead::LogSigma)],
        )
            .prop_map(
                |(input, hidden, decoder_hidden, latent, activation, likelihood, init, sigma)| VaeConfig {
                    input,
                    hidden,
                    decoder_hidden,
                    latent,
                    activation,
                    likelihood,
                    init,
                    sigma,
                    upper: Default::default(),
                    conv: Default::default(),
                },
            );
        let upper = prop::collection::vec(
            (prop::collection::vec(1usize..300, 0..3), 1usize..200)
                .prop_map(|(hidden, latent)| StochasticLayer { hidden, latent }),
            0..3,
        );
        let conv = prop::option::of(
            (1usize..100, prop::collection::vec(1usize..128, 1..4))
                .prop_map(|(side, channels)| ConvNet { side, channels }),
        );
        let model = (model, upper, conv).prop_map(|(m, upper, conv)| VaeConfig {
            upper: upper.into(),
            conv: conv.into(),
            ..m
        });
        let kind =
            prop_oneof![
                (0.0f64..1.0, 0.0f64..1.0, 1e-12f64..1.0)
                    .prop_map(|(beta1, beta2, eps)| OptimizerKind::Adam { beta1, beta2, eps }),
                (0.0f64..1.0).prop_map(|momentum| OptimizerKind::Sgd { momentum }),
                (1e-12f64..1.0).prop_map(|eps| OptimizerKind::Adagrad { eps }),
            ];
        let optimizer = (kind, 1e-9f64..10.0, 0.0f64..1.0, any::<bool>()).prop_map(
            |(kind, lr, weight_decay, decoupled_weight_decay)| OptimizerConfig {
                kind,
                lr,
                weight_decay,
                decoupled_weight_decay,
            },
        );
        let objective = prop_oneof![Just(Objective::Elbo), Just(Objective::ElboMc), Just(Objective::Iwae)];
        let elbo = (
            objective,
            1usize..64,
            0.0f64..10.0,
            prop_oneof![Just(Estimator::Reparam), Just(Estimator::Score), Just(Estimator::ScoreBaseline)],
        )
            .prop_map(|(objective, samples, beta, estimator)| ElboConfig {
                objective,
                samples,
                beta,
                estimator,
            });
        (
            model,
            1usize..1000,
            1usize..1024,
            any::<u64>(),
            any::<bool>(),
            elbo,
            optimizer,
            prop::option::of(1usize..60000),
            prop::collection::vec(
                (1usize..100, 1e-6f64..1.0).prop_map(|(epochs, lr)| LrStage { epochs, lr }),
                0..4,
            ),
        )
            .prop_map(
                |(model, epochs, batch_size, seed, binarize, elbo, optimizer, train_limit, lr_stages)| {
                    TrainConfig {
                        model,
                        epochs,
                        batch_size,
                        seed,
                        binarize,
                        elbo,
                        optimizer,
                        train_limit,
                        lr_stages,
                    }
                },
            )
    }

    proptest! {
        /// Any configuration survives JSON (the form checkpoints store) unchanged, and is a
        /// run of its own.
        #[test]
        fn any_configuration_survives_json(c in any_config()) {
            let text = c.to_json().to_string();
            let back = TrainConfig::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
            prop_assert_eq!(&back, &c);
            prop_assert!(c.check_same_run(&back).is_ok());
        }
    }

    #[test]
    fn a_difference_is_named_by_its_dotted_key() {
        let a = TrainConfig::default();
        let b = TrainConfig {
            optimizer: OptimizerConfig { kind: OptimizerKind::Sgd { momentum: 0.5 }, ..a.optimizer },
            epochs: 99,
            ..a.clone()
        };
        let err = a.check_same_run(&b).unwrap_err();
        assert_eq!(err.differences.len(), 5);
        assert_eq!(
            err.to_string(),
            "another configuration (checkpoint vs this run: optimizer.kind.beta1: null vs 0.9, optimizer.kind.beta2: null vs 0.999, optimizer.kind.eps: null vs 1e-8, optimizer.kind.momentum: 0.5 vs null, optimizer.kind.rule: \"sgd\" vs \"adam\")"
        );
        let c = TrainConfig { epochs: 3, ..a.clone() };
        assert!(a.check_same_run(&c).is_ok(), "epochs may differ");
        let d =
            TrainConfig { model: VaeConfig { hidden: vec![200, 200], ..VaeConfig::default() }, ..a.clone() };
        assert_eq!(
            a.check_same_run(&d).unwrap_err().to_string(),
            "another configuration (checkpoint vs this run: model.hidden: [200,200] vs [400])"
        );
    }

    #[test]
    fn burdas_schedule_and_the_rate_of_each_epoch() {
        let stages = burda_schedule();
        let epochs: Vec<usize> = stages.iter().map(|s| s.epochs).collect();
        assert_eq!(epochs, [1, 3, 9, 27, 81, 243, 729, 2187]);
        let lrs: Vec<f64> = stages.iter().map(|s| (s.lr * 1e5).round() / 1e5).collect();
        assert_eq!(lrs, [1e-3, 7.2e-4, 5.2e-4, 3.7e-4, 2.7e-4, 1.9e-4, 1.4e-4, 1e-4]);
        let c = TrainConfig { epochs: 3280, lr_stages: stages, ..TrainConfig::default() };
        c.validate().unwrap();
        assert_eq!(
            (c.lr_at(0), c.lr_at(1), c.lr_at(3), c.lr_at(4)),
            (c.lr_stages[0].lr, c.lr_stages[1].lr, c.lr_stages[1].lr, c.lr_stages[2].lr)
        );
        assert_eq!(c.lr_at(3279), c.lr_stages[7].lr);
        assert_eq!(c.lr_at(5000), c.lr_stages[7].lr, "after the last stage, its rate");
        assert_eq!(TrainConfig::default().lr_at(5), 1e-3);
        let ends: Vec<Option<usize>> = [1, 2, 4, 13, 1093, 3280, 3281].map(|e| c.stage_ending_at(e)).to_vec();
        assert_eq!(ends, [Some(0), None, Some(1), Some(2), Some(6), Some(7), None]);
    }

    #[test]
    fn two_stochastic_layers_need_a_log_weight_objective() {
        let two = TrainConfig::burda(Objective::Iwae, 5, 2);
        two.validate().unwrap();
        assert_eq!((two.model.latent, two.model.upper[0].latent), (100, 50));
        let closed = TrainConfig { elbo: ElboConfig::default(), ..two.clone() };
        assert!(closed.validate().unwrap_err().to_string().contains("no closed-form KL"));
        // The second layer's networks count in the step's products.
        assert!(two.step_macs() > TrainConfig::burda(Objective::Iwae, 5, 1).step_macs());
    }

    #[test]
    fn convolutional_shapes_that_cannot_work_are_refused() {
        let conv = |side, channels: Vec<usize>, input| {
            let mut c = TrainConfig::default();
            c.model.input = input;
            c.model.conv = Some(ConvNet { side, channels }).into();
            c.validate().err().map(|e| e.to_string())
        };
        assert_eq!(conv(28, vec![32, 64], 784), None);
        assert!(conv(28, vec![32, 64], 1024).unwrap().contains("square images of side 28"));
        assert!(conv(28, vec![8, 8, 8], 784).unwrap().contains("divisible by 8"));
        assert!(conv(28, vec![], 784).unwrap().contains("at least one convolution"));
        assert!(conv(28, vec![32, 0], 784).unwrap().contains("at least 1 channel"));
        // The products of a step: 2·(conv1 without its input gradient) + 3·(everything else).
        let mut c = TrainConfig::default();
        c.model.hidden.clear();
        c.model.conv = Some(ConvNet { side: 28, channels: vec![32, 64] }).into();
        let conv1 = 128 * 196 * 32 * 16;
        let conv2 = 128 * 49 * 64 * 32 * 16;
        let dense = 128 * (2 * 3136 * 20 + 20 * 3136);
        assert_eq!(c.step_macs(), 2 * conv1 + 3 * (conv2 + conv2 + conv1 + dense));
    }

    #[test]
    fn a_learning_rate_that_is_zero_in_f32_is_refused() {
        let c = TrainConfig {
            optimizer: OptimizerConfig { lr: 1e-50, ..OptimizerConfig::default() },
            ..TrainConfig::default()
        };
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "invalid configuration: learning rate 1e-50 is 0 in f32, the precision of the parameters"
        );
    }

    /// Every hyper-parameter the optimizer uses in f32 is refused where f32 makes it 0 or
    /// infinite: an eps of 1e39 would swamp every update, and nothing would move.
    #[test]
    fn hyper_parameters_that_f32_turns_to_zero_or_infinity_are_refused() {
        let with = |lr: f64, weight_decay: f64, eps: f64| TrainConfig {
            optimizer: OptimizerConfig {
                lr,
                weight_decay,
                kind: OptimizerKind::Adam { beta1: 0.9, beta2: 0.999, eps },
                ..OptimizerConfig::default()
            },
            ..TrainConfig::default()
        };
        for (c, says) in [
            (with(1e39, 0.0, 1e-8), "learning rate 1e39 is infinite in f32"),
            (with(1e-3, 1e300, 1e-8), "weight decay 1e300 is infinite in f32"),
            (with(1e-3, 0.0, 1e39), "eps 1e39 is infinite in f32"),
            (with(1e-3, 0.0, 1e-50), "eps 1e-50 is 0 in f32"),
        ] {
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
        with(1e-3, 0.0, 1e-8).validate().unwrap();
        let sgd =
            OptimizerConfig { kind: OptimizerKind::Sgd { momentum: 0.0 }, ..OptimizerConfig::default() };
        TrainConfig { optimizer: sgd, ..TrainConfig::default() }.validate().unwrap();
    }

    /// Fields added later have defaults, so checkpoints written before them still load.
    #[test]
    fn configurations_from_before_later_fields_read_with_their_defaults() {
        let mut v = TrainConfig::default().to_json();
        v["model"].as_object_mut().unwrap().remove("init");
        v["model"].as_object_mut().unwrap().remove("sigma");
        v["elbo"].as_object_mut().unwrap().remove("objective");
        v.as_object_mut().unwrap().remove("lr_stages");
        assert_eq!(TrainConfig::from_json(&v).unwrap(), TrainConfig::default());
    }

    #[test]
    fn unknown_or_missing_fields_are_refused() {
        let mut v = TrainConfig::default().to_json();
        v["surprise"] = Value::from(1);
        let err = TrainConfig::from_json(&v).unwrap_err().to_string();
        assert!(err.contains("unknown field `surprise`"), "{err}");
        let mut v = TrainConfig::default().to_json();
        v.as_object_mut().unwrap().remove("seed");
        let err = TrainConfig::from_json(&v).unwrap_err().to_string();
        assert!(err.contains("missing field `seed`"), "{err}");
    }

    #[test]
    fn names_parse_back() {
        for a in Activation::ALL {
            assert_eq!(a.as_str().parse::<Activation>().unwrap(), a);
        }
        assert_eq!(
            "gelu".parse::<Activation>().unwrap_err(),
            "unknown activation 'gelu' (expected relu, tanh, sigmoid, softplus)"
        );
        assert_eq!("gaussian-learned".parse::<Likelihood>().unwrap(), Likelihood::GaussianLearned);
    }
}
