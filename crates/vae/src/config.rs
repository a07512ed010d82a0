//! One home for the configuration of a run: the model's shape, the objective, the
//! optimizer with all of its hyper-parameters, and the training loop. A [`TrainConfig`] is
//! serialized whole (serde, JSON) into every checkpoint and summary and read back exactly,
//! and [`TrainConfig::check_same_run`] is the one rule that decides whether a checkpoint
//! may be continued by a run.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, VaeError};
use crate::io::MemoryLimit;

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

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
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

/// The decoder's distribution over pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Likelihood {
    /// Independent Bernoulli pixels with logits from the decoder (the default).
    Bernoulli,
    /// Gaussian pixels of unit variance around the decoder's mean (squared error).
    Gaussian,
    /// Gaussian pixels with a mean and a log-variance per pixel from the decoder.
    GaussianLearned,
}

named_enum!(
    Likelihood,
    "likelihood",
    Bernoulli = "bernoulli",
    Gaussian = "gaussian",
    GaussianLearned = "gaussian-learned"
);

/// The nonlinearity after every hidden layer (autograd's one list of them).
pub use autograd::Activation;

/// How a model's weights start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Init {
    /// PyTorch's `nn.Linear`: weight and bias uniform on `±1/√fan_in`.
    #[default]
    Pytorch,
    /// Glorot & Bengio's uniform `±√(6/(fan_in + fan_out))` for weights, zero biases (Burda
    /// et al.). With a Bernoulli decoder, the output bias starts at the logit of the mean
    /// training image.
    Glorot,
}

named_enum!(Init, "initialization", Pytorch = "pytorch", Glorot = "glorot");

/// What a Gaussian layer's scale head outputs. Both describe the same distributions; they
/// differ in how a step on the head's weights moves σ, and so in how training goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SigmaHead {
    /// The log-variance, `σ = exp(½·h)` (pytorch/examples' `logvar`).
    #[default]
    Logvar,
    /// The log standard deviation, `σ = exp(h)` (Burda et al.'s `exp(linear)`), as a head
    /// named `log_sigma`.
    LogSigma,
}

named_enum!(SigmaHead, "sigma head", Logvar = "logvar", LogSigma = "log-sigma");

impl SigmaHead {
    /// The head's parameter name: `logvar` or `log_sigma`.
    pub fn head_name(self) -> &'static str {
        match self {
            SigmaHead::Logvar => "logvar",
            SigmaHead::LogSigma => "log_sigma",
        }
    }
}

/// A stochastic layer above the first: `q(z_l | z_{l−1})` is an MLP from the layer below
/// with these hidden layers to a Gaussian over `latent` units, and `p(z_{l−1} | z_l)` the
/// mirror MLP back to a Gaussian over the layer below (Burda et al.'s second layer:
/// 100 → 100, 50 units).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StochasticLayer {
    /// Hidden layers of `q(z_l | z_{l−1})`, lower side first; `p(z_{l−1} | z_l)` reverses them.
    pub hidden: Vec<usize>,
    /// Units of `z_l`.
    pub latent: usize,
}

/// A convolutional encoder and decoder for square one-channel images: every convolution
/// has a 4×4 kernel, stride 2 and padding 1, so each halves the image's side (28 → 14 → 7
/// for `[32, 64]`); the encoder flattens the last feature map into its dense layers, and
/// the decoder mirrors it with transposed convolutions after a dense projection back to
/// that feature map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvNet {
    /// The images' side: the input is `side × side` pixels.
    pub side: usize,
    /// Output channels of each convolution, image side first (`[32, 64]`).
    pub channels: Vec<usize>,
}

impl ConvNet {
    /// Kernel side of every convolution.
    pub const KERNEL: usize = 4;
    /// Stride of every convolution.
    pub const STRIDE: usize = 2;
    /// Padding of every convolution.
    pub const PADDING: usize = 1;

    /// The side of the feature map after the `i`-th convolution's input halvings, `side / 2^i`.
    pub fn side_after(&self, layers: usize) -> usize {
        self.side >> layers
    }

    /// Units of the flattened last feature map: what the dense layers see.
    pub fn flat(&self) -> usize {
        let s = self.side_after(self.channels.len());
        self.channels.last().map_or(self.side * self.side, |c| c * s * s)
    }

    /// `(channels in, channels out, side in, side out)` of every convolution of the encoder.
    pub fn layers(&self) -> Vec<(usize, usize, usize, usize)> {
        let ins = std::iter::once(1).chain(self.channels.iter().copied());
        ins.zip(&self.channels)
            .enumerate()
            .map(|(i, (c, &o))| (c, o, self.side_after(i), self.side_after(i + 1)))
            .collect()
    }
}

/// The shape of a VAE: input, hidden layers, latent size, nonlinearity and likelihood.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaeConfig {
    /// Pixels per image (784 for MNIST; a run takes it from its data).
    pub input: usize,
    /// The encoder's hidden layers, input side first (`[400]`).
    pub hidden: Vec<usize>,
    /// The decoder's hidden layers, latent side first; `None` mirrors the encoder.
    pub decoder_hidden: Option<Vec<usize>>,
    /// Latent dimensions (20).
    pub latent: usize,
    /// The nonlinearity of every hidden layer.
    pub activation: Activation,
    /// The decoder's distribution.
    pub likelihood: Likelihood,
    /// How the weights start (absent in checkpoints written before it existed: PyTorch's).
    #[serde(default)]
    pub init: Init,
    /// What the encoder's scale head outputs (absent in checkpoints written before it
    /// existed: the log-variance).
    #[serde(default)]
    pub sigma: SigmaHead,
    /// Stochastic layers above the first (`latent` is then `z₁`, and the prior is on the
    /// top layer); empty for one stochastic layer (and in checkpoints written before it
    /// existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upper: Vec<StochasticLayer>,
    /// Convolutions before the encoder's dense layers and after the decoder's (`None`: an
    /// MLP on both sides, as in checkpoints written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conv: Option<ConvNet>,
}

impl Default for VaeConfig {
    /// pytorch/examples' VAE: 784-400-20-400-784 with ReLU and Bernoulli pixels.
    fn default() -> Self {
        VaeConfig {
            input: 784,
            hidden: vec![400],
            decoder_hidden: None,
            latent: 20,
            activation: Activation::Relu,
            likelihood: Likelihood::Bernoulli,
            init: Init::Pytorch,
            sigma: SigmaHead::Logvar,
            upper: Vec::new(),
            conv: None,
        }
    }
}

impl VaeConfig {
    /// The decoder's hidden layers, latent side first (the encoder's reversed, unless set).
    pub fn decoder_layers(&self) -> Vec<usize> {
        self.decoder_hidden.clone().unwrap_or_else(|| self.hidden.iter().rev().copied().collect())
    }

    /// True for the shape of pytorch/examples' VAE (one ReLU hidden layer on each side, of
    /// one size), whose parameters keep that model's names `fc1` … `fc4`.
    pub fn is_pytorch_example(&self) -> bool {
        self.hidden.len() == 1
            && self.decoder_layers() == self.hidden
            && self.activation == Activation::Relu
            && self.conv.is_none()
    }
}

/// How the encoder's gradient of the reconstruction term is estimated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Estimator {
    /// The reparameterization trick: `z = mu + σ·eps` is differentiated through.
    Reparam,
    /// The score-function (REINFORCE) estimator: `z` is sampled and detached, and the encoder
    /// gets `f(z)·∇ log q(z|x)` with `f = log p(x|z)`, plus the analytic KL gradient.
    Score,
}

named_enum!(Estimator, "estimator", Reparam = "reparam", Score = "score");

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
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElboConfig {
    /// What is maximized (absent in checkpoints written before it existed: the ELBO).
    #[serde(default)]
    pub objective: Objective,
    /// Samples of z per image (L, or the k of the bounds).
    pub samples: usize,
    /// Weight of the KL term (β; 1 for the ELBO).
    pub beta: f64,
    /// Gradient estimator for the encoder.
    pub estimator: Estimator,
}

impl Default for ElboConfig {
    fn default() -> Self {
        ElboConfig { objective: Objective::Elbo, samples: 1, beta: 1.0, estimator: Estimator::Reparam }
    }
}

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

/// Everything that defines a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The model's shape.
    pub model: VaeConfig,
    /// Epochs to train in all (a resumed run continues up to this many).
    pub epochs: usize,
    /// Images per optimizer step.
    pub batch_size: usize,
    /// Seed of the initialization and of every random stream.
    pub seed: u64,
    /// Draw binary pixels afresh each epoch (dynamic binarization) instead of using
    /// intensities as Bernoulli targets.
    pub binarize: bool,
    /// The objective.
    pub elbo: ElboConfig,
    /// The optimizer.
    pub optimizer: OptimizerConfig,
    /// Train on only the first this many training images.
    pub train_limit: Option<usize>,
    #[serde(default)]
    /// Learning-rate stages, run in order (empty: `optimizer.lr` throughout). A run shorter
    /// than the stages stops inside one (and may be resumed with more epochs); epochs after
    /// the last stage keep its rate.
    pub lr_stages: Vec<LrStage>,
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
    /// pytorch/examples' recipe: 784-400-20, Adam 1e-3, batch 128, 10 epochs, seed 1.
    fn default() -> Self {
        TrainConfig {
            model: VaeConfig::default(),
            epochs: 10,
            batch_size: 128,
            seed: 1,
            binarize: false,
            elbo: ElboConfig::default(),
            optimizer: OptimizerConfig::default(),
            train_limit: None,
            lr_stages: Vec::new(),
        }
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
    /// Burda et al.'s recipe with `objective`, `k` samples per image and `layers` (1 or 2)
    /// stochastic layers: 784-200-200-50 tanh (two layers: 784-200-200-100-100-100-50),
    /// σ = exp(linear), Glorot weights (the output bias at the mean image's logit), Adam with
    /// eps 1e-4, batch 20, dynamic binarization, the 3^i schedule over 3,280 passes.
    pub fn burda(objective: Objective, k: usize, layers: usize) -> Self {
        let stages = burda_schedule();
        let (latent, upper) = if layers >= 2 {
            (100, vec![StochasticLayer { hidden: vec![100, 100], latent: 50 }])
        } else {
            (50, Vec::new())
        };
        TrainConfig {
            model: VaeConfig {
                hidden: vec![200, 200],
                latent,
                activation: Activation::Tanh,
                init: Init::Glorot,
                sigma: SigmaHead::LogSigma,
                upper,
                ..VaeConfig::default()
            },
            epochs: stages.iter().map(|s| s.epochs).sum(),
            batch_size: 20,
            binarize: true,
            elbo: ElboConfig { objective, samples: k, ..ElboConfig::default() },
            optimizer: OptimizerConfig {
                kind: OptimizerKind::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-4 },
                lr: stages[0].lr,
                weight_decay: 0.0,
            },
            lr_stages: stages,
            ..TrainConfig::default()
        }
    }

    /// Multiply-adds of the matrix products of one training step at a full batch: each layer's
    /// forward product, and in backward its weight gradient and (but for the first layer,
    /// whose input is data) its input gradient. Encoder layers see `batch` rows, decoder
    /// layers `batch · samples` (the log-weight objectives; the closed-form ELBO decodes each
    /// sample in turn, which is the same count).
    pub fn step_macs(&self) -> u128 {
        let products = self.products(self.batch_size as u128, self.elbo.samples as u128);
        products.iter().map(|p| p.macs() * if p.from_data { 2 } else { 3 }).sum()
    }

    /// Multiply-adds of the forward matrix products for `images` images with `samples`
    /// draws of z each (the k = `samples` evaluation's count: one encoder pass per image,
    /// one decoder pass per draw).
    pub fn forward_macs(&self, images: usize, samples: usize) -> u128 {
        self.products(images as u128, samples as u128).iter().map(Product::macs).sum()
    }

    /// Parameters of the model: every product's weights and biases (a convolution's kernel
    /// is its product's `in·k·k × out` weight, its bias one per output channel). Exact in
    /// `u128`.
    pub fn parameters(&self) -> u128 {
        self.products(1, 1).iter().map(|p| p.inputs * p.outputs + p.outputs).sum()
    }

    /// Every forward product of the model for `b` images and `k` draws of z per image: the
    /// one description of the architecture that the step's multiply-adds, the parameter
    /// count and the memory estimate are read from (a test checks it against
    /// [`crate::model::Vae::build`]).
    fn products(&self, b: u128, k: u128) -> Vec<Product> {
        let m = &self.model;
        let mut layers = Vec::new();
        let dense = |inputs: u128, outputs: u128, rows: u128, from_data: bool| Product {
            inputs,
            outputs,
            rows,
            from_data,
            held: rows * (inputs + outputs),
        };
        let heads = if m.likelihood == Likelihood::GaussianLearned { 2 } else { 1 };
        // A convolution is a product of `out` rows by `in·k·k` by the output pixels: listed
        // as a layer of `in·k·k` inputs and `out` outputs over `rows · pixels` rows. It and
        // its mirror hold the same tensors per image: the `in`-channel map, the column
        // matrix and the `out`-channel map.
        let convs = m.conv.as_ref().map_or(Vec::new(), ConvNet::layers);
        let k2 = (ConvNet::KERNEL * ConvNet::KERNEL) as u128;
        for (i, &(c, o, side_in, side)) in convs.iter().enumerate() {
            let (c, o) = (c as u128, o as u128);
            let (pixels, pixels_in) = ((side * side) as u128, (side_in * side_in) as u128);
            let per_image = c * pixels_in + c * k2 * pixels + o * pixels;
            let conv = |inputs, outputs, images, from_data| Product {
                inputs,
                outputs,
                rows: images * pixels,
                from_data,
                held: images * per_image,
            };
            layers.push(conv(c * k2, o, b, i == 0));
            // The decoder's mirror image, the same product run backwards (the first is the
            // output head, to one channel, once per head).
            let mirror = conv(o * k2, if i == 0 { 1 } else { c }, b * k, false);
            layers.extend(std::iter::repeat_n(mirror, if i == 0 { heads } else { 1 }));
        }
        let mut width = m.conv.as_ref().map_or(m.input, ConvNet::flat) as u128;
        for &h in &m.hidden {
            layers.push(dense(width, h as u128, b, m.conv.is_none() && layers.is_empty()));
            width = h as u128;
        }
        let from_data = m.hidden.is_empty() && m.conv.is_none();
        for _ in 0..2 {
            layers.push(dense(width, m.latent as u128, b, from_data));
        }
        let mut width = m.latent as u128;
        let mut widths = m.decoder_layers();
        widths.extend(m.conv.as_ref().map(ConvNet::flat));
        for h in widths {
            layers.push(dense(width, h as u128, b * k, false));
            width = h as u128;
        }
        if m.conv.is_none() {
            for _ in 0..heads {
                layers.push(dense(width, m.input as u128, b * k, false));
            }
        }
        // Each upper layer: q's MLP and two heads, p's MLP and two heads, on every sample.
        let mut below = m.latent as u128;
        for up in &m.upper {
            for (from, to) in [(below, up.latent as u128), (up.latent as u128, below)] {
                let mut width = from;
                let hidden: Vec<usize> =
                    if from == below { up.hidden.clone() } else { up.hidden.iter().rev().copied().collect() };
                for &h in &hidden {
                    layers.push(dense(width, h as u128, b * k, false));
                    width = h as u128;
                }
                layers.push(dense(width, to, b * k, false));
                layers.push(dense(width, to, b * k, false));
            }
            below = up.latent as u128;
        }
        layers
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
        if let Some(net) = &m.conv {
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

    /// Refuses, before anything is allocated, a configuration whose parameters, optimizer
    /// state and activations would not fit in `limit`, naming the setting (as its
    /// command-line flag) that asks for the most and the bytes it would need.
    /// `train_images` caps the batch; `iwae_k` is the samples of the importance-weighted
    /// evaluation after training (0 for none).
    pub fn check_memory(&self, train_images: usize, iwae_k: usize, limit: &MemoryLimit) -> Result<()> {
        let need = self.bytes_needed(train_images, iwae_k);
        if need <= limit.bytes as u128 {
            return Ok(());
        }
        let m = &self.model;
        let with = |f: &dyn Fn(&mut TrainConfig)| {
            let mut c = self.clone();
            f(&mut c);
            c.bytes_needed(train_images, iwae_k)
        };
        let list = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
        let suspects = [
            ("--hidden", list(&m.hidden), with(&|c| c.model.hidden.iter_mut().for_each(|h| *h = 1))),
            (
                "--decoder-hidden",
                list(&m.decoder_layers()),
                with(&|c| c.model.decoder_hidden = Some(vec![1; c.model.decoder_layers().len()])),
            ),
            ("--latent", m.latent.to_string(), with(&|c| c.model.latent = 1)),
            ("--batch-size", self.batch_size.to_string(), with(&|c| c.batch_size = 1)),
            ("--samples", self.elbo.samples.to_string(), with(&|c| c.elbo.samples = 1)),
            (
                "--conv-channels",
                m.conv.as_ref().map_or(String::new(), |n| list(&n.channels)),
                with(&|c| c.model.conv.iter_mut().for_each(|n| n.channels.iter_mut().for_each(|h| *h = 1))),
            ),
            (
                "--upper-hidden",
                m.upper.first().map_or(String::new(), |u| list(&u.hidden)),
                with(&|c| c.model.upper.iter_mut().for_each(|u| u.hidden.iter_mut().for_each(|h| *h = 1))),
            ),
            (
                "--upper-latent",
                m.upper.first().map_or(String::new(), |u| u.latent.to_string()),
                with(&|c| c.model.upper.iter_mut().for_each(|u| u.latent = 1)),
            ),
        ];
        limit.require(need, &suspects)
    }

    /// A generous estimate of the bytes a run of this configuration allocates: parameters
    /// with their gradients and optimizer state (and a checkpoint's copy of them), the
    /// activations of a training step (each product's input and output with their
    /// gradients and temporaries, a convolution's column matrix besides), and those of the
    /// larger evaluation (the test bound's batch, or the IWAE bound's rows for `iwae_k`
    /// samples, if any), and the training images' bytes. Exact in `u128`, so no size
    /// overflows.
    fn bytes_needed(&self, train_images: usize, iwae_k: usize) -> u128 {
        let activations =
            |b: usize, k: usize| -> u128 { self.products(b as u128, k as u128).iter().map(|p| p.held).sum() };
        let batch = self.batch_size.min(train_images.max(1));
        let train = 4 * activations(batch, self.elbo.samples);
        let iwae = match iwae_k {
            0 => 0,
            k => activations(crate::run::iwae_images_per_call(k), k.min(crate::run::IWAE_ROWS)),
        };
        let eval = 2 * activations(crate::train::EVAL_BATCH, 1).max(iwae);
        // Values, gradients, an update's temporaries and the optimizer's slots; saving a
        // checkpoint holds about as much again (the file's bytes and a tensor's copies).
        let slots = self.optimizer.kind.slots().len() as u128;
        let data = train_images as u128 * self.model.input as u128;
        (2 * self.parameters() * (3 + slots) + train + eval) * 4 + data
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

    /// The differences from `other`, other than the number of epochs (which a resumed run
    /// may extend), as `key: ours vs theirs` items with dotted keys (`optimizer.lr: …`).
    pub fn differences(&self, other: &TrainConfig) -> Vec<String> {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        flatten("", &self.to_json(), &mut a);
        flatten("", &other.to_json(), &mut b);
        let value = |list: &[(String, Value)], key: &str| {
            list.iter().find(|(k, _)| k == key).map_or(Value::Null, |(_, v)| v.clone())
        };
        let mut keys: Vec<&String> = a.iter().chain(&b).map(|(k, _)| k).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter(|k| k.as_str() != "epochs")
            .filter_map(|k| {
                let (x, y) = (value(&a, k), value(&b, k));
                (x != y).then(|| format!("{k}: {x} vs {y}"))
            })
            .collect()
    }

    /// The one rule for continuing a run: `stored` (a checkpoint's configuration) may be
    /// continued by this run when everything but the number of epochs is the same. The
    /// error names every difference.
    pub fn check_same_run(&self, stored: &TrainConfig) -> std::result::Result<(), ConfigMismatch> {
        let differences = stored.differences(self);
        if differences.is_empty() {
            Ok(())
        } else {
            Err(ConfigMismatch { differences })
        }
    }
}

/// A checkpoint's configuration that a run may not continue: every difference, as
/// [`TrainConfig::differences`] words them (checkpoint first, this run second).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("another configuration (checkpoint vs this run: {})", differences.join(", "))]
pub struct ConfigMismatch {
    /// `key: checkpoint's vs this run's` for each setting that differs.
    pub differences: Vec<String>,
}

/// One forward matrix product of a model, as [`TrainConfig`]'s estimates count it.
#[derive(Clone, Copy, Debug)]
struct Product {
    /// Inputs per row (a convolution's `in·k·k`).
    inputs: u128,
    /// Outputs per row.
    outputs: u128,
    /// Rows (a convolution's: images times output pixels).
    rows: u128,
    /// Whether the input is the data (no input gradient in backward).
    from_data: bool,
    /// Floats the forward keeps: input, output and any column matrix.
    held: u128,
}

impl Product {
    fn macs(&self) -> u128 {
        self.rows * self.inputs * self.outputs
    }
}

/// Every leaf of `v` with its dotted path.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        leaf => out.push((prefix.to_string(), leaf.clone())),
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
                    upper: Vec::new(),
                    conv: None,
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
        let model = (model, upper, conv).prop_map(|(m, upper, conv)| VaeConfig { upper, conv, ..m });
        let kind =
            prop_oneof![
                (0.0f64..1.0, 0.0f64..1.0, 1e-12f64..1.0)
                    .prop_map(|(beta1, beta2, eps)| OptimizerKind::Adam { beta1, beta2, eps }),
                (0.0f64..1.0).prop_map(|momentum| OptimizerKind::Sgd { momentum }),
                (1e-12f64..1.0).prop_map(|eps| OptimizerKind::Adagrad { eps }),
            ];
        let optimizer = (kind, 1e-9f64..10.0, 0.0f64..1.0)
            .prop_map(|(kind, lr, weight_decay)| OptimizerConfig { kind, lr, weight_decay });
        let objective = prop_oneof![Just(Objective::Elbo), Just(Objective::ElboMc), Just(Objective::Iwae)];
        let elbo = (
            objective,
            1usize..64,
            0.0f64..10.0,
            prop_oneof![Just(Estimator::Reparam), Just(Estimator::Score)],
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
    fn sizes_that_cannot_fit_are_refused_naming_the_flag() {
        let default = TrainConfig::default();
        let gb = |n: u64| MemoryLimit { bytes: n << 30, source: "this machine" };
        assert!(default.check_memory(60000, 0, &gb(1)).is_ok());
        let huge = |f: &dyn Fn(&mut TrainConfig)| {
            let mut c = TrainConfig::default();
            f(&mut c);
            c.check_memory(60000, 0, &gb(24)).unwrap_err().to_string()
        };
        let e = huge(&|c| c.model.hidden = vec![1_000_000_000]);
        assert!(e.starts_with("invalid configuration: --hidden 1000000000 would need about "), "{e}");
        assert!(e.ends_with("of memory, and this machine allows 25.8 GB; choose smaller sizes"), "{e}");
        assert!(huge(&|c| c.model.latent = 1_000_000_000_000_000_000)
            .starts_with("invalid configuration: --latent 1000000000000000000 would need"));
        assert!(huge(&|c| c.elbo.samples = 1_000_000_000).contains("--samples 1000000000 would need"));
        assert!(huge(&|c| c.model.decoder_hidden = Some(vec![10, 1 << 40]))
            .contains("--decoder-hidden 10,1099511627776"));
        let conv = |c: &mut TrainConfig, channels: Vec<usize>| {
            c.model.conv = Some(ConvNet { side: 28, channels });
        };
        let e = huge(&|c| conv(c, vec![1_000_000, 1_000_000]));
        assert!(e.contains("--conv-channels 1000000,1000000 would need"), "{e}");
        let e = huge(&|c| {
            c.model.upper = vec![StochasticLayer { hidden: vec![100, 1 << 30], latent: 50 }];
            c.elbo.objective = Objective::Iwae;
        });
        assert!(e.contains("--upper-hidden 100,1073741824 would need"), "{e}");
        // The dense layers after the convolutions count: `--arch conv --conv-channels 8,512
        // --latent 2000 --batch-size 1` (no hidden layer; 512 channels of 7×7 into a latent
        // of 2,000) peaks at 4.8 GB resident (`/usr/bin/time -v`).
        let mut wide = TrainConfig { batch_size: 1, ..TrainConfig::default() };
        conv(&mut wide, vec![8, 512]);
        wide.model.hidden.clear();
        wide.model.latent = 2000;
        assert!(wide.bytes_needed(60000, 0) > 4_800_000_000, "{}", wide.bytes_needed(60000, 0));
        // The batch is capped by the data: a huge batch on a small set fits.
        let big_batch = TrainConfig { batch_size: 1 << 40, ..TrainConfig::default() };
        assert!(big_batch.check_memory(1000, 0, &gb(1)).is_ok());
    }

    /// The parameter count that sizes the memory estimate and the products of a step is the
    /// model's, for every kind of layer.
    #[test]
    fn the_estimates_count_the_models_parameters() {
        let mut configs = vec![TrainConfig::default(), TrainConfig::burda(Objective::Iwae, 5, 2)];
        let mut conv = TrainConfig::default();
        conv.model.conv = Some(ConvNet { side: 28, channels: vec![4, 8] });
        conv.model.likelihood = Likelihood::GaussianLearned;
        configs.push(conv);
        let mut odd = TrainConfig::default();
        odd.model.hidden = vec![30, 20];
        odd.model.decoder_hidden = Some(vec![10]);
        odd.model.likelihood = Likelihood::GaussianLearned;
        configs.push(odd);
        for c in configs {
            let model = crate::model::Vae::<f32>::build(c.model.clone(), |_, shape, _| {
                Ok::<_, ()>(tensor::Tensor::zeros(shape))
            })
            .unwrap();
            let built: usize = model.params.tensors().iter().map(|t| t.len()).sum();
            assert_eq!(c.parameters(), built as u128, "{:?}", c.model);
        }
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
    fn multiply_adds_of_a_step() {
        // Default: 128·(784·400·2 + 400·20·3·2 + 20·400·3 + 400·784·3) = 209.9 M MACs.
        assert_eq!(
            TrainConfig::default().step_macs(),
            128 * (784 * 400 * 2 + 400 * 20 * 6 + 20 * 400 * 3 + 400 * 784 * 3)
        );
        // Burda, k = 5: the decoder's products see 100 rows.
        let b = TrainConfig::burda(Objective::Iwae, 5, 1);
        let enc = 20 * (784 * 200 * 2 + 200 * 200 * 3 + 200 * 50 * 6);
        let dec = 100 * (50 * 200 * 3 + 200 * 200 * 3 + 200 * 784 * 3);
        assert_eq!(b.step_macs(), enc + dec);
        b.validate().unwrap();
        // The k = 5000 evaluation of one image: the encoder once, the decoder 5000 times.
        let enc = 784 * 200 + 200 * 200 + 200 * 50 * 2;
        let dec = 5000 * (50 * 200 + 200 * 200 + 200 * 784);
        assert_eq!(b.forward_macs(1, 5000), enc + dec);
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
            c.model.conv = Some(ConvNet { side, channels });
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
        c.model.conv = Some(ConvNet { side: 28, channels: vec![32, 64] });
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
