//! The model's shape: layers, latent sizes, convolutions, nonlinearity, likelihood,
//! initialization and the encoder's scale head.

use serde::{Deserialize, Serialize};

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
