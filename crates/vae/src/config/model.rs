//! The model's shape: layers, latent sizes, convolutions, nonlinearity, likelihood,
//! initialization and the encoder's scale head.

use std::ops::{Deref, DerefMut};

use clap::{Arg, ArgAction, ArgMatches, Command, FromArgMatches};
use serde::{Deserialize, Serialize};

use super::cli::{at_least_one, layer_size};

/// The decoder's distribution over pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Likelihood {
    /// Independent Bernoulli pixels with logits from the decoder (the default).
    #[default]
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

    /// Units of the flattened last feature map: what the dense layers see. Saturates rather
    /// than wraps, so a size too large for memory is refused as too large, never taken for
    /// a small one.
    pub fn flat(&self) -> usize {
        let s = self.side_after(self.channels.len());
        self.channels
            .last()
            .map_or(self.side.saturating_mul(self.side), |c| c.saturating_mul(s).saturating_mul(s))
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

/// The stochastic layers above the first, as one setting (its flags: `--stochastic-layers`,
/// `--upper-hidden`, `--upper-latent`); a list of [`StochasticLayer`]s otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UpperLayers(pub Vec<StochasticLayer>);

impl Deref for UpperLayers {
    type Target = Vec<StochasticLayer>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for UpperLayers {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<'a> IntoIterator for &'a UpperLayers {
    type Item = &'a StochasticLayer;
    type IntoIter = std::slice::Iter<'a, StochasticLayer>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl From<Vec<StochasticLayer>> for UpperLayers {
    fn from(layers: Vec<StochasticLayer>) -> Self {
        UpperLayers(layers)
    }
}

impl clap::Args for UpperLayers {
    fn augment_args(cmd: Command) -> Command {
        cmd.arg(
            Arg::new("stochastic_layers")
                .value_name("N")
                .long("stochastic-layers")
                .default_value("1")
                .value_parser(clap::value_parser!(u64).range(1..=2))
                .help(
                    "Stochastic layers: 1, or 2 for Burda et al.'s second layer above the first \
                     (q(z2|z1) and p(z1|z2) through --upper-hidden, z2 of --upper-latent units; the \
                     first layer's --latent then defaults to 100); two layers train with --objective \
                     elbo-mc or iwae",
                ),
        )
        .arg(
            Arg::new("upper_hidden")
                .value_name("SIZES")
                .long("upper-hidden")
                .default_value("100,100")
                .value_delimiter(',')
                .action(ArgAction::Set)
                .allow_hyphen_values(true)
                .value_parser(layer_size)
                .help("Hidden layers of the second stochastic layer's networks, as a list"),
        )
        .arg(
            Arg::new("upper_latent")
                .value_name("N")
                .long("upper-latent")
                .default_value("50")
                .value_parser(at_least_one)
                .help("Units of the second stochastic layer"),
        )
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for UpperLayers {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        if m.get_one::<u64>("stochastic_layers").copied().unwrap_or(1) < 2 {
            return Ok(UpperLayers::default());
        }
        let hidden = m.get_many::<usize>("upper_hidden").map_or(Vec::new(), |v| v.copied().collect());
        let latent = m.get_one::<usize>("upper_latent").copied().unwrap_or(50);
        Ok(UpperLayers(vec![StochasticLayer { hidden, latent }]))
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

/// The convolutions of a model, as one setting (its flags: `--arch`, `--conv-channels`):
/// `None` for an MLP on both sides.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Convolutions(pub Option<ConvNet>);

impl Deref for Convolutions {
    type Target = Option<ConvNet>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Convolutions {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl From<Option<ConvNet>> for Convolutions {
    fn from(net: Option<ConvNet>) -> Self {
        Convolutions(net)
    }
}

impl clap::Args for Convolutions {
    fn augment_args(cmd: Command) -> Command {
        cmd.arg(
            Arg::new("arch")
                .value_name("ARCH")
                .long("arch")
                .default_value("mlp")
                .value_parser(["mlp", "conv"])
                .help(
                    "Encoder and decoder: mlp (dense layers only, --hidden), or conv (4×4 stride-2 \
                     convolutions, --conv-channels, before the encoder's dense layers and transposed \
                     ones after the decoder's; --hidden then defaults to none)",
                ),
        )
        .arg(
            Arg::new("conv_channels")
                .value_name("CHANNELS")
                .long("conv-channels")
                .default_value("32,64")
                .value_delimiter(',')
                .action(ArgAction::Set)
                .allow_hyphen_values(true)
                .value_parser(layer_size)
                .help(
                    "Channels of the convolutions with --arch conv, image side first; each halves \
                     the image's side, which must be divisible by 2 per convolution",
                ),
        )
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for Convolutions {
    /// The image's side is the data's, set by the run (0 here).
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        if m.get_one::<String>("arch").map(String::as_str) != Some("conv") {
            return Ok(Convolutions(None));
        }
        let channels = m.get_many::<usize>("conv_channels").map_or(Vec::new(), |v| v.copied().collect());
        Ok(Convolutions(Some(ConvNet { side: 0, channels })))
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

/// The shape of a VAE: input, hidden layers, latent size, nonlinearity and likelihood.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct VaeConfig {
    /// Pixels per image (784 for MNIST; a run takes it from its data).
    #[arg(skip = 784usize)]
    pub input: usize,
    /// Hidden layers of the encoder, input side first, as a list (`200,200`); the decoder
    /// mirrors them unless --decoder-hidden says otherwise.
    #[arg(long, default_value = "400", value_delimiter = ',', action = clap::ArgAction::Set, value_parser = layer_size, allow_hyphen_values = true)]
    pub hidden: Vec<usize>,
    /// Hidden layers of the decoder, latent side first (default: the encoder's, reversed).
    #[arg(long, value_delimiter = ',', action = clap::ArgAction::Set, value_parser = layer_size, allow_hyphen_values = true)]
    pub decoder_hidden: Option<Vec<usize>>,
    /// Latent dimensions (2 also draws the manifold and the latent scatter).
    #[arg(long, default_value_t = 20, value_parser = at_least_one)]
    pub latent: usize,
    /// Nonlinearity of every hidden layer: relu, tanh, sigmoid or softplus.
    #[arg(long, default_value_t = Activation::Relu)]
    pub activation: Activation,
    /// Decoder distribution: bernoulli, gaussian (unit variance) or gaussian-learned.
    #[arg(long, default_value_t)]
    pub likelihood: Likelihood,
    /// Weight initialization: pytorch (nn.Linear's) or glorot (zero biases, and a Bernoulli
    /// output bias at the logit of the mean training image).
    #[arg(long, default_value_t)]
    // Absent in checkpoints written before it existed: PyTorch's.
    #[serde(default)]
    pub init: Init,
    /// What the encoder's scale head outputs: logvar (σ = exp(½h)) or log-sigma (σ = exp(h),
    /// Burda et al.'s).
    #[arg(long, default_value_t)]
    // Absent in checkpoints written before it existed: the log-variance.
    #[serde(default)]
    pub sigma: SigmaHead,
    /// Stochastic layers above the first (`latent` is then `z₁`, and the prior is on the
    /// top layer); empty for one stochastic layer (and in checkpoints written before it
    /// existed).
    #[command(flatten)]
    #[serde(default, skip_serializing_if = "single_layer")]
    pub upper: UpperLayers,
    /// Convolutions before the encoder's dense layers and after the decoder's (`None`: an
    /// MLP on both sides, as in checkpoints written before it existed).
    #[command(flatten)]
    #[serde(default, skip_serializing_if = "dense_only")]
    pub conv: Convolutions,
}

fn single_layer(upper: &UpperLayers) -> bool {
    upper.is_empty()
}

fn dense_only(conv: &Convolutions) -> bool {
    conv.is_none()
}

impl Default for VaeConfig {
    /// pytorch/examples' VAE: 784-400-20-400-784 with ReLU and Bernoulli pixels: the flags'
    /// defaults.
    fn default() -> Self {
        super::cli::defaults()
    }
}

impl VaeConfig {
    /// Sizes the model for the data: images of `pixels` pixels, `side` rows high (the data
    /// decides; the flags do not say).
    pub fn fit_images(&mut self, pixels: usize, side: usize) {
        self.input = pixels;
        if let Some(net) = self.conv.as_mut() {
            net.side = side;
        }
    }

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
