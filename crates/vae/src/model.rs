//! The VAE: a Gaussian encoder, the reparameterization, and a Bernoulli or Gaussian decoder.

use std::fmt;
use std::str::FromStr;

use autograd::{Graph, Var};
use rand::Rng;
use rand_distr::uniform::SampleUniform;
use tensor::Element;

use crate::nn::{Linear, ParamSet};

/// The decoder's distribution over pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Likelihood {
    /// Independent Bernoulli pixels with logits from the decoder (the default).
    Bernoulli,
    /// Gaussian pixels of unit variance around the decoder's mean (squared error).
    Gaussian,
    /// Gaussian pixels with a mean and a log-variance per pixel from the decoder.
    GaussianLearned,
}

impl Likelihood {
    /// The name used on the command line and in checkpoints.
    pub fn as_str(self) -> &'static str {
        match self {
            Likelihood::Bernoulli => "bernoulli",
            Likelihood::Gaussian => "gaussian",
            Likelihood::GaussianLearned => "gaussian-learned",
        }
    }
}

impl fmt::Display for Likelihood {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Likelihood {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bernoulli" => Ok(Likelihood::Bernoulli),
            "gaussian" => Ok(Likelihood::Gaussian),
            "gaussian-learned" => Ok(Likelihood::GaussianLearned),
            _ => Err(format!("unknown likelihood '{s}' (expected bernoulli, gaussian or gaussian-learned)")),
        }
    }
}

/// The shape of a VAE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VaeConfig {
    /// Pixels per image (784 for MNIST).
    pub input: usize,
    /// Hidden units of the encoder's and the decoder's hidden layer (400).
    pub hidden: usize,
    /// Latent dimensions (20).
    pub latent: usize,
    /// The decoder's distribution.
    pub likelihood: Likelihood,
}

impl Default for VaeConfig {
    fn default() -> Self {
        VaeConfig { input: 784, hidden: 400, latent: 20, likelihood: Likelihood::Bernoulli }
    }
}

/// What the decoder produces for a batch of latent codes.
#[derive(Clone, Copy, Debug)]
pub struct DecoderOut<'g, T: Element> {
    /// Bernoulli logits, or the Gaussian mean.
    pub out: Var<'g, T>,
    /// The per-pixel log-variance, for [`Likelihood::GaussianLearned`].
    pub logvar: Option<Var<'g, T>>,
}

/// The VAE of Kingma & Welling as pytorch/examples builds it: `fc1` (input → hidden, ReLU),
/// `fc21`/`fc22` (hidden → latent mean / log-variance), `fc3` (latent → hidden, ReLU), `fc4`
/// (hidden → input), plus `fc5` (hidden → input log-variance) for a learned Gaussian.
#[derive(Clone, Debug)]
pub struct Vae<T: Element> {
    /// The shape.
    pub config: VaeConfig,
    /// The parameters, named as a PyTorch `state_dict` of the same model.
    pub params: ParamSet<T>,
    fc1: Linear,
    fc21: Linear,
    fc22: Linear,
    fc3: Linear,
    fc4: Linear,
    fc5: Option<Linear>,
}

impl<T: Element + SampleUniform> Vae<T> {
    /// A freshly initialized model (PyTorch's `nn.Linear` initialization) from `rng`.
    pub fn new<R: Rng + ?Sized>(config: VaeConfig, rng: &mut R) -> Self {
        let VaeConfig { input, hidden, latent, likelihood } = config;
        let mut p = ParamSet::new();
        let fc1 = Linear::new(&mut p, "fc1", input, hidden, rng);
        let fc21 = Linear::new(&mut p, "fc21", hidden, latent, rng);
        let fc22 = Linear::new(&mut p, "fc22", hidden, latent, rng);
        let fc3 = Linear::new(&mut p, "fc3", latent, hidden, rng);
        let fc4 = Linear::new(&mut p, "fc4", hidden, input, rng);
        let fc5 = (likelihood == Likelihood::GaussianLearned)
            .then(|| Linear::new(&mut p, "fc5", hidden, input, rng));
        Vae { config, params: p, fc1, fc21, fc22, fc3, fc4, fc5 }
    }
}

impl<T: Element> Vae<T> {
    /// `x → (mu, logvar)` of q(z|x), with `vars` from `self.params.bind(graph)`.
    pub fn encode<'g>(&self, vars: &[Var<'g, T>], x: Var<'g, T>) -> (Var<'g, T>, Var<'g, T>) {
        let h = self.fc1.forward_relu(vars, x);
        (self.fc21.forward(vars, h), self.fc22.forward(vars, h))
    }

    /// `z → ` the parameters of p(x|z).
    pub fn decode<'g>(&self, vars: &[Var<'g, T>], z: Var<'g, T>) -> DecoderOut<'g, T> {
        let h = self.fc3.forward_relu(vars, z);
        DecoderOut { out: self.fc4.forward(vars, h), logvar: self.fc5.map(|l| l.forward(vars, h)) }
    }

    /// The reparameterization `z = mu + exp(½·logvar)·eps`, differentiable in `mu` and
    /// `logvar` for a fixed noise `eps ~ N(0, I)`.
    pub fn reparameterize<'g>(mu: Var<'g, T>, logvar: Var<'g, T>, eps: Var<'g, T>) -> Var<'g, T> {
        mu + logvar.mul_scalar(T::from_f64_lossy(0.5)).exp() * eps
    }

    /// Decoder means for latent codes `z` (`[n, latent]`) without recording a tape: pixel
    /// probabilities for a Bernoulli decoder, means for a Gaussian one.
    pub fn decode_mean(&self, z: &tensor::Tensor<T>) -> tensor::Tensor<T> {
        let g = Graph::no_grad();
        let vars = self.params.bind(&g);
        let out = self.decode(&vars, g.constant(z.clone())).out.value();
        match self.config.likelihood {
            Likelihood::Bernoulli => out.sigmoid(),
            Likelihood::Gaussian | Likelihood::GaussianLearned => out,
        }
    }

    /// The encoder's means for images `x` (`[n, input]`), without recording a tape.
    pub fn encode_mean(&self, x: &tensor::Tensor<T>) -> tensor::Tensor<T> {
        let g = Graph::no_grad();
        let vars = self.params.bind(&g);
        self.encode(&vars, g.constant(x.clone())).0.value()
    }
}
