//! The VAE: a Gaussian encoder (an MLP of any depth to a mean and a log-variance, after
//! strided convolutions with [`ConvNet`]), the reparameterization, and a Bernoulli or
//! Gaussian decoder (an MLP back to the pixels, or to a feature map that transposed
//! convolutions take back to the image). A
//! model is bound to a tape once ([`Vae::bind`]); the bound model's `encode`/`decode` are all
//! that objectives, training and evaluation call.

use std::borrow::Cow;

use autograd::{Graph, Var};
use rand::Rng;
use rand_distr::uniform::SampleUniform;
use rand_distr::{Distribution, StandardNormal};
use tensor::{Conv2dSpec, Dims, Element, Tensor};

use crate::error::VaeError;

pub use crate::config::{Activation, ConvNet, Init, Likelihood, SigmaHead, VaeConfig};
use crate::nn::{Conv, Linear, ParamSet};

/// What the decoder produces for a batch of latent codes.
#[derive(Clone, Copy, Debug)]
pub struct DecoderOut<'g, T: Element> {
    /// Bernoulli logits, or the Gaussian mean.
    pub out: Var<'g, T>,
    /// The per-pixel log-variance, for [`Likelihood::GaussianLearned`].
    pub logvar: Option<Var<'g, T>>,
}

/// A VAE of [`VaeConfig`]'s shape. Its parameters are named as a PyTorch `state_dict` of the
/// same model: for pytorch/examples' shape (one ReLU hidden layer on each side) that model's
/// own names, `fc1` (input → hidden), `fc21`/`fc22` (hidden → latent mean / log-variance),
/// `fc3` (latent → hidden), `fc4` (hidden → input), plus `fc5` (hidden → input
/// log-variance) for a learned Gaussian; for any other shape the names of a model with
/// `encoder = nn.Sequential(Linear, act, Linear, act, …)`, heads `mu` and `logvar` (or
/// `log_sigma`, for [`SigmaHead::LogSigma`]),
/// `decoder = nn.Sequential(…)` and heads `out` (and `out_logvar`): `encoder.0.weight`,
/// `encoder.2.weight`, …, `mu.weight`, `decoder.0.weight`, …, `out.weight`. A stochastic
/// layer above the first, numbered n from 2, adds `encodern.0`, … and heads `mun`,
/// `logvarn` for q(z_n | z_{n−1}), and `decodern.0`, … with heads `decodern_mu`,
/// `decodern_logvar` for p(z_{n−1} | z_n). A convolutional model ([`ConvNet`]) is named as
/// `encoder = nn.Sequential(Conv2d, act, …, Flatten, Linear, act, …)` and `decoder =
/// nn.Sequential(Linear, act, …, Unflatten, ConvTranspose2d, act, …)` with its last
/// transposed convolution as the head `out`.
#[derive(Clone, Debug)]
pub struct Vae<T: Element> {
    /// The shape.
    pub config: VaeConfig,
    /// The parameters, named as a PyTorch `state_dict` of the same model.
    pub params: ParamSet<T>,
    encoder_conv: Vec<Conv>,
    encoder: Vec<Linear>,
    mu: Linear,
    logvar: Linear,
    decoder: Vec<Linear>,
    decoder_conv: Vec<Conv>,
    out: Layer,
    out_logvar: Option<Layer>,
    upper: Vec<Upper>,
}

/// The decoder's output layer: dense for an MLP, a transposed convolution for a
/// convolutional decoder.
#[derive(Clone, Copy, Debug)]
enum Layer {
    Dense(Linear),
    Conv(Conv),
}

impl Layer {
    fn forward<'g, T: Element>(&self, vars: &[Var<'g, T>], x: Var<'g, T>) -> Var<'g, T> {
        match self {
            Layer::Dense(l) => l.forward(vars, x),
            Layer::Conv(c) => c.forward(vars, x),
        }
    }

    fn bias_index(&self) -> usize {
        match self {
            Layer::Dense(l) => l.bias_index(),
            Layer::Conv(c) => c.bias_index(),
        }
    }
}

/// The networks of a stochastic layer above the first: `q(z_l | z_{l−1})` and
/// `p(z_{l−1} | z_l)`, each an MLP to a Gaussian's mean and scale heads.
#[derive(Clone, Debug)]
struct Upper {
    q_hidden: Vec<Linear>,
    q_mu: Linear,
    q_scale: Linear,
    p_hidden: Vec<Linear>,
    p_mu: Linear,
    p_scale: Linear,
}

/// Where a layer sits in the model. The encoder's layers see each image once; the others
/// (decoder, stochastic layers above the first) see each sample of z.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A strided convolution of the encoder.
    EncoderConv,
    /// A hidden dense layer of the encoder.
    Encoder,
    /// The encoder's mean head.
    Mu,
    /// The encoder's scale head (log-variance or log σ).
    Scale,
    /// A hidden dense layer of the decoder (the last of a convolutional decoder projects
    /// back to the encoder's last feature map).
    Decoder,
    /// A transposed convolution of the decoder before its output.
    DecoderConv,
    /// The decoder's output: Bernoulli logits or the Gaussian mean.
    Out,
    /// The decoder's per-pixel log-variance ([`Likelihood::GaussianLearned`]).
    OutLogvar,
    /// A layer of stochastic layer `level` above the first (from 0).
    Upper {
        /// Which stochastic layer above the first.
        level: usize,
        /// Which of its networks' layers.
        part: UpperPart,
    },
}

impl Role {
    /// True for the layers that see each image once (the encoder's), false for those that
    /// see each sample of z.
    pub fn per_image(self) -> bool {
        matches!(self, Role::EncoderConv | Role::Encoder | Role::Mu | Role::Scale)
    }
}

/// A layer of a stochastic layer above the first: `q(z_l | z_{l−1})`'s hidden layers and
/// heads, then `p(z_{l−1} | z_l)`'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpperPart {
    /// A hidden layer of q.
    QHidden,
    /// q's mean head.
    QMu,
    /// q's scale head.
    QScale,
    /// A hidden layer of p.
    PHidden,
    /// p's mean head.
    PMu,
    /// p's scale head.
    PScale,
}

/// What a layer computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// `x·Wᵀ + b` from `inputs` to `outputs` units: weight `[outputs, inputs]`.
    Dense {
        /// Units in.
        inputs: usize,
        /// Units out.
        outputs: usize,
    },
    /// A [`ConvNet::KERNEL`]-square convolution of stride [`ConvNet::STRIDE`] (or its
    /// transpose) from `inputs` channels of side `side_in` to `outputs` channels of side
    /// `side_out`.
    Conv {
        /// Channels in.
        inputs: usize,
        /// Channels out.
        outputs: usize,
        /// The input map's side.
        side_in: usize,
        /// The output map's side.
        side_out: usize,
        /// A transposed convolution (the decoder's), weight `[inputs, outputs, k, k]`.
        transpose: bool,
    },
}

/// One layer of a model: its parameters' name (`{name}.weight`, `{name}.bias`), what it
/// computes and where it sits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSpec {
    /// The name its weight and bias are prefixed with.
    pub name: String,
    /// What it computes.
    pub kind: LayerKind,
    /// Where it sits.
    pub role: Role,
}

/// Every layer of a model of this shape, in the order of its parameters: the one
/// description of the architecture, which [`Vae::build`] constructs and the configuration's
/// estimates (multiply-adds, parameters, memory) count.
pub fn architecture(config: &VaeConfig) -> Vec<LayerSpec> {
    let names = LayerNames::of(config);
    let mut layers = Vec::new();
    let mut push = |name: String, kind, role| layers.push(LayerSpec { name, kind, role });
    let dense = |inputs, outputs| LayerKind::Dense { inputs, outputs };
    let convs = config.conv.as_ref().map_or(Vec::new(), ConvNet::layers);
    for (i, &(c, o, side_in, side_out)) in convs.iter().enumerate() {
        let kind = LayerKind::Conv { inputs: c, outputs: o, side_in, side_out, transpose: false };
        push(names.encoder_conv(i), kind, Role::EncoderConv);
    }
    let mut width = config.conv.as_ref().map_or(config.input, ConvNet::flat);
    for (i, &h) in config.hidden.iter().enumerate() {
        push(names.encoder(i), dense(width, h), Role::Encoder);
        width = h;
    }
    push(names.mu.into(), dense(width, config.latent), Role::Mu);
    push(names.logvar.into(), dense(width, config.latent), Role::Scale);
    let mut width = config.latent;
    let mut widths = config.decoder_layers();
    // A convolutional decoder projects back to the encoder's last feature map first.
    widths.extend(config.conv.as_ref().map(ConvNet::flat));
    for (i, &h) in widths.iter().enumerate() {
        push(names.decoder(i), dense(width, h), Role::Decoder);
        width = h;
    }
    // Transposed convolutions mirror the encoder's, the last (to the image) being `out`.
    let mirror = |&(c, o, side_in, side_out): &(usize, usize, usize, usize)| LayerKind::Conv {
        inputs: o,
        outputs: c,
        side_in: side_out,
        side_out: side_in,
        transpose: true,
    };
    for (j, twin) in convs.iter().skip(1).rev().enumerate() {
        push(names.decoder_conv(widths.len(), j), mirror(twin), Role::DecoderConv);
    }
    let out = convs.first().map_or(dense(width, config.input), mirror);
    push(names.out.into(), out, Role::Out);
    if config.likelihood == Likelihood::GaussianLearned {
        push(names.out_logvar.into(), out, Role::OutLogvar);
    }
    // Stochastic layers above the first, numbered from 2: `encoder2.0`, `mu2`, `logvar2`
    // (`log_sigma2`) for q, `decoder2.0`, `decoder2_mu`, `decoder2_logvar` for p.
    let scale = config.sigma.head_name();
    let mut below = config.latent;
    for (level, up) in config.upper.iter().enumerate() {
        let (n, role) = (level + 2, |part| Role::Upper { level, part });
        let mut width = below;
        for (i, &h) in up.hidden.iter().enumerate() {
            push(format!("encoder{n}.{}", 2 * i), dense(width, h), role(UpperPart::QHidden));
            width = h;
        }
        push(format!("mu{n}"), dense(width, up.latent), role(UpperPart::QMu));
        push(format!("{scale}{n}"), dense(width, up.latent), role(UpperPart::QScale));
        let mut width = up.latent;
        for (i, &h) in up.hidden.iter().rev().enumerate() {
            push(format!("decoder{n}.{}", 2 * i), dense(width, h), role(UpperPart::PHidden));
            width = h;
        }
        push(format!("decoder{n}_mu"), dense(width, below), role(UpperPart::PMu));
        push(format!("decoder{n}_{scale}"), dense(width, below), role(UpperPart::PScale));
        below = up.latent;
    }
    layers
}

impl<T: Element> Vae<T> {
    /// Builds the model's [`architecture`], asking `make(name, shape, fan_in)` for every
    /// tensor in order: random initialization ([`Vae::new`]) or a checkpoint's tensors
    /// (loading), so a restored model never draws random weights first.
    pub fn build<E>(
        config: VaeConfig,
        mut make: impl FnMut(&str, &[usize], usize) -> Result<Tensor<T>, E>,
    ) -> Result<Self, E> {
        let mut p = ParamSet::new();
        let make = &mut make;
        let spec = Conv2dSpec::new(ConvNet::STRIDE, ConvNet::PADDING);
        let mut by_role: Vec<(Role, Layer)> = Vec::new();
        for layer in architecture(&config) {
            let built = match layer.kind {
                LayerKind::Dense { inputs, outputs } => {
                    Layer::Dense(Linear::build(&mut p, &layer.name, inputs, outputs, make)?)
                }
                LayerKind::Conv { inputs, outputs, transpose, .. } => Layer::Conv(Conv::build(
                    &mut p,
                    &layer.name,
                    inputs,
                    outputs,
                    ConvNet::KERNEL,
                    spec,
                    transpose,
                    make,
                )?),
            };
            by_role.push((layer.role, built));
        }
        // The architecture gives each role its kind of layer: these only sort them.
        let all = |role: Role| by_role.iter().filter(move |(r, _)| *r == role).map(|&(_, l)| l);
        let one = |role: Role| all(role).next().expect("the architecture has this layer");
        let dense = |l: Layer| match l {
            Layer::Dense(l) => l,
            Layer::Conv(_) => unreachable!("the architecture makes this layer dense"),
        };
        let conv = |l: Layer| match l {
            Layer::Conv(c) => c,
            Layer::Dense(_) => unreachable!("the architecture makes this layer a convolution"),
        };
        let upper = (0..config.upper.len())
            .map(|level| {
                let part = |part| Role::Upper { level, part };
                Upper {
                    q_hidden: all(part(UpperPart::QHidden)).map(dense).collect(),
                    q_mu: dense(one(part(UpperPart::QMu))),
                    q_scale: dense(one(part(UpperPart::QScale))),
                    p_hidden: all(part(UpperPart::PHidden)).map(dense).collect(),
                    p_mu: dense(one(part(UpperPart::PMu))),
                    p_scale: dense(one(part(UpperPart::PScale))),
                }
            })
            .collect();
        Ok(Vae {
            encoder_conv: all(Role::EncoderConv).map(conv).collect(),
            encoder: all(Role::Encoder).map(dense).collect(),
            mu: dense(one(Role::Mu)),
            logvar: dense(one(Role::Scale)),
            decoder: all(Role::Decoder).map(dense).collect(),
            decoder_conv: all(Role::DecoderConv).map(conv).collect(),
            out: one(Role::Out),
            out_logvar: all(Role::OutLogvar).next(),
            upper,
            config,
            params: p,
        })
    }

    /// Units of every stochastic layer, from the data side up (`[latent]` for one layer).
    pub fn latent_sizes(&self) -> Dims {
        std::iter::once(self.config.latent).chain(self.config.upper.iter().map(|u| u.latent)).collect()
    }

    /// Codes of the first stochastic layer drawn from the model's prior, `[n, latent]`:
    /// the top layer from N(0, I), each layer below from `p(z_{l−1} | z_l)` in turn.
    pub fn sample_prior<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Tensor<T>
    where
        StandardNormal: Distribution<T>,
    {
        let sizes = self.latent_sizes();
        let mut z = Tensor::<T>::randn(&[n, *sizes.last().expect("one layer at least")], rng);
        let g = Graph::no_grad();
        let bound = self.bind(&g);
        for l in (0..self.upper.len()).rev() {
            let (mu, logvar) = bound.prior_upper(l, g.constant(z));
            let eps = Tensor::<T>::randn(&[n, sizes[l]], rng);
            z = &mu.value() + &(&logvar.value().mul_scalar(T::from_f64_lossy(0.5)).exp() * &eps);
        }
        z
    }

    /// Binds the parameters to `graph` as leaves that take gradients.
    pub fn bind<'m, 'g>(&'m self, graph: &'g Graph<T>) -> BoundVae<'m, 'g, T> {
        BoundVae { vae: self, vars: Cow::Owned(self.params.bind(graph).to_vec()) }
    }

    /// The model over parameters already on a tape (`vars` from `self.params.bind`, in
    /// order). An error unless there is one variable per parameter, of its shape.
    pub fn attach<'m, 'g>(&'m self, vars: &'m [Var<'g, T>]) -> crate::Result<BoundVae<'m, 'g, T>> {
        let fits = vars.len() == self.params.len()
            && vars.iter().zip(self.params.tensors()).all(|(v, p)| v.shape().as_slice() == p.shape());
        if !fits {
            return Err(VaeError::invalid(
                "attach",
                format!(
                    "{} variables for the model's {} parameters, or of other shapes",
                    vars.len(),
                    self.params.len()
                ),
            ));
        }
        Ok(BoundVae { vae: self, vars: Cow::Borrowed(vars) })
    }

    /// The reparameterization `z = mu + exp(½·logvar)·eps`, differentiable in `mu` and
    /// `logvar` for a fixed noise `eps ~ N(0, I)`.
    pub fn reparameterize<'g>(mu: Var<'g, T>, logvar: Var<'g, T>, eps: Var<'g, T>) -> Var<'g, T> {
        mu + logvar.mul_scalar(T::from_f64_lossy(0.5)).exp() * eps
    }

    /// Sets the Bernoulli output layer's bias to the logit of `mean` (the mean training image,
    /// values in [0, 1], clamped to [1e-3, 1 − 1e-3]), as Burda et al. start it; a
    /// convolutional decoder's one output bias to the logit of the mean pixel. Does nothing
    /// for a Gaussian decoder.
    pub fn set_output_bias_to_logit(&mut self, mean: &Tensor<T>) {
        if self.config.likelihood != Likelihood::Bernoulli {
            return;
        }
        let (lo, hi) = (T::from_f64_lossy(1e-3), T::from_f64_lossy(1.0 - 1e-3));
        let logit = |p: T| {
            let p = p.max(lo).min(hi);
            (p / (T::one() - p)).ln()
        };
        // A transposed convolution has one bias for its one channel: the mean pixel's logit.
        let logit = match self.out {
            Layer::Dense(_) => mean.map(logit),
            Layer::Conv(_) => Tensor::from_vec(vec![logit(mean.mean().item())], &[1]),
        };
        self.params.tensors_mut()[self.out.bias_index()] = logit;
    }

    /// Per stochastic layer, from the data side up: the variance over `x` of each unit's
    /// mean under q, and how many units are active (variance above 0.01, Burda et al.'s
    /// criterion). Layers above the first are fed the means of the layer below.
    pub fn active_units(&self, x: &Tensor<T>) -> Vec<(Vec<f64>, usize)> {
        let g = Graph::no_grad();
        let bound = self.bind(&g);
        let mut means = vec![bound.encode(g.constant(x.clone())).0];
        for l in 0..self.upper.len() {
            let below = *means.last().expect("the first layer");
            means.push(bound.encode_upper(l, below).0);
        }
        means
            .into_iter()
            .map(|mu| {
                let mu = mu.value().cast::<f64>();
                let n = mu.shape()[0].max(1) as f64;
                let mean = mu.sum_axis(0, true).mul_scalar(1.0 / n);
                let var = (&mu - &mean).square().sum_axis(0, false).mul_scalar(1.0 / n).to_vec();
                let active = var.iter().filter(|&&v| v > 0.01).count();
                (var, active)
            })
            .collect()
    }

    /// Decoder means for latent codes `z` (`[n, latent]`) without recording a tape: pixel
    /// probabilities for a Bernoulli decoder, means for a Gaussian one.
    pub fn decode_mean(&self, z: &Tensor<T>) -> Tensor<T> {
        let g = Graph::no_grad();
        let out = self.bind(&g).decode(g.constant(z.clone())).out.value();
        match self.config.likelihood {
            Likelihood::Bernoulli => out.sigmoid(),
            Likelihood::Gaussian | Likelihood::GaussianLearned => out,
        }
    }

    /// The encoder's means for images `x` (`[n, input]`), without recording a tape.
    pub fn encode_mean(&self, x: &Tensor<T>) -> Tensor<T> {
        let g = Graph::no_grad();
        self.bind(&g).encode(g.constant(x.clone())).0.value()
    }
}

impl<T: Element + SampleUniform> Vae<T> {
    /// A freshly initialized model ([`Init`]: PyTorch's `nn.Linear` initialization, or
    /// Glorot's uniform weights with zero biases) from `rng`.
    pub fn new<R: Rng + ?Sized>(config: VaeConfig, rng: &mut R) -> Self {
        let scheme = config.init;
        let init = |_: &str, shape: &[usize], fan_in: usize| -> Result<Tensor<T>, std::convert::Infallible> {
            Ok(match (scheme, shape) {
                (Init::Pytorch, _) => crate::nn::pytorch_uniform(shape, fan_in, rng),
                (Init::Glorot, s) if s.len() >= 2 => crate::nn::glorot_uniform(s, rng),
                (Init::Glorot, _) => Tensor::zeros(shape),
            })
        };
        crate::nn::infallible(Self::build(config, init))
    }
}

/// The parameter names of a model's layers (see [`Vae`]).
struct LayerNames {
    pytorch_example: bool,
    /// Where the encoder's dense layers start in its `Sequential`.
    encoder_offset: usize,
    mu: &'static str,
    logvar: &'static str,
    out: &'static str,
    out_logvar: &'static str,
}

impl LayerNames {
    fn of(config: &VaeConfig) -> Self {
        if config.is_pytorch_example() {
            LayerNames {
                pytorch_example: true,
                encoder_offset: 0,
                mu: "fc21",
                logvar: "fc22",
                out: "fc4",
                out_logvar: "fc5",
            }
        } else {
            LayerNames {
                pytorch_example: false,
                encoder_offset: config.conv.as_ref().map_or(0, |c| 2 * c.channels.len() + 1),
                mu: "mu",
                logvar: config.sigma.head_name(),
                out: "out",
                out_logvar: "out_logvar",
            }
        }
    }

    /// Convolution `i` of the encoder: at position `2i` of the `Sequential` (activations sit
    /// between).
    fn encoder_conv(&self, i: usize) -> String {
        format!("encoder.{}", 2 * i)
    }

    /// Hidden layer `i` of the encoder: a `Linear` at position `2i` of the `Sequential`,
    /// after the convolutions and an `nn.Flatten` when there are any.
    fn encoder(&self, i: usize) -> String {
        if self.pytorch_example {
            "fc1".into()
        } else {
            format!("encoder.{}", self.encoder_offset + 2 * i)
        }
    }

    /// Dense layer `i` of the decoder, at position `2i`.
    fn decoder(&self, i: usize) -> String {
        if self.pytorch_example {
            "fc3".into()
        } else {
            format!("decoder.{}", 2 * i)
        }
    }

    /// Transposed convolution `j` of the decoder after its `dense` dense layers: past their
    /// activations and an `nn.Unflatten`, at `2·dense + 1 + 2j`.
    fn decoder_conv(&self, dense: usize, j: usize) -> String {
        format!("decoder.{}", 2 * dense + 1 + 2 * j)
    }
}

/// A [`Vae`] whose parameters are leaves of one tape: what the objectives call.
pub struct BoundVae<'m, 'g, T: Element> {
    vae: &'m Vae<T>,
    /// Borrowed from the caller ([`Vae::attach`]) or bound here ([`Vae::bind`]).
    vars: Cow<'m, [Var<'g, T>]>,
}

impl<'g, T: Element> BoundVae<'_, 'g, T> {
    /// The model's shape.
    pub fn config(&self) -> &VaeConfig {
        &self.vae.config
    }

    /// The parameters' leaves, in the order of [`Vae::params`].
    pub fn vars(&self) -> &[Var<'g, T>] {
        &self.vars
    }

    /// The hidden layers of an MLP trunk, each followed by the activation.
    fn trunk(&self, layers: &[Linear], mut h: Var<'g, T>) -> Var<'g, T> {
        for l in layers {
            h = l.forward_act(&self.vars, h, self.vae.config.activation);
        }
        h
    }

    /// A Gaussian's `(mu, logvar)` from features `h` through its two heads. A
    /// [`SigmaHead::LogSigma`] head's `log σ` is doubled into the log-variance.
    fn gaussian(&self, mu: &Linear, scale: &Linear, h: Var<'g, T>) -> (Var<'g, T>, Var<'g, T>) {
        let scale = scale.forward(&self.vars, h);
        let logvar = match self.vae.config.sigma {
            SigmaHead::Logvar => scale,
            SigmaHead::LogSigma => scale.mul_scalar(T::from_f64_lossy(2.0)),
        };
        (mu.forward(&self.vars, h), logvar)
    }

    /// `x → (mu, logvar)` of q(z₁|x).
    pub fn encode(&self, x: Var<'g, T>) -> (Var<'g, T>, Var<'g, T>) {
        let x = match self.vae.config.conv.as_ref() {
            Some(net) => {
                let n = x.shape()[0];
                let mut h = x.reshape(&[n, 1, net.side, net.side]);
                for l in &self.vae.encoder_conv {
                    h = l.forward_act(&self.vars, h, self.vae.config.activation);
                }
                h.reshape(&[n, net.flat()])
            }
            None => x,
        };
        let h = self.trunk(&self.vae.encoder, x);
        self.gaussian(&self.vae.mu, &self.vae.logvar, h)
    }

    /// Stochastic layers above the first.
    pub fn upper_layers(&self) -> usize {
        self.vae.upper.len()
    }

    /// [`Vae::latent_sizes`].
    pub fn latent_sizes(&self) -> Dims {
        self.vae.latent_sizes()
    }

    /// `z_{l+1} → (mu, logvar)` of q(z_{l+2} | z_{l+1}) for upper layer `l` (from 0: the
    /// second stochastic layer).
    pub fn encode_upper(&self, l: usize, below: Var<'g, T>) -> (Var<'g, T>, Var<'g, T>) {
        let up = &self.vae.upper[l];
        let h = self.trunk(&up.q_hidden, below);
        self.gaussian(&up.q_mu, &up.q_scale, h)
    }

    /// `z_{l+2} → (mu, logvar)` of p(z_{l+1} | z_{l+2}) for upper layer `l`.
    pub fn prior_upper(&self, l: usize, above: Var<'g, T>) -> (Var<'g, T>, Var<'g, T>) {
        let up = &self.vae.upper[l];
        let h = self.trunk(&up.p_hidden, above);
        self.gaussian(&up.p_mu, &up.p_scale, h)
    }

    /// `z → ` the parameters of p(x|z).
    pub fn decode(&self, z: Var<'g, T>) -> DecoderOut<'g, T> {
        let mut h = self.trunk(&self.vae.decoder, z);
        let m = h.shape()[0];
        let config = &self.vae.config;
        if let Some(net) = config.conv.as_ref() {
            let s = net.side_after(net.channels.len());
            h = h.reshape(&[m, *net.channels.last().expect("a convolution"), s, s]);
            for l in &self.vae.decoder_conv {
                h = l.forward_act(&self.vars, h, config.activation);
            }
        }
        let head = |l: &Layer| match l {
            Layer::Dense(_) => l.forward(&self.vars, h),
            Layer::Conv(_) => l.forward(&self.vars, h).reshape(&[m, config.input]),
        };
        DecoderOut { out: head(&self.vae.out), logvar: self.vae.out_logvar.as_ref().map(head) }
    }

    /// [`Vae::reparameterize`].
    pub fn reparameterize(&self, mu: Var<'g, T>, logvar: Var<'g, T>, eps: Var<'g, T>) -> Var<'g, T> {
        Vae::reparameterize(mu, logvar, eps)
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    fn names(config: VaeConfig) -> Vec<String> {
        Vae::<f32>::new(config, &mut StdRng::seed_from_u64(0)).params.names().to_vec()
    }

    #[test]
    fn parameter_names_follow_pytorch() {
        let default = names(VaeConfig::default());
        assert_eq!(
            default.iter().step_by(2).cloned().collect::<Vec<_>>(),
            ["fc1.weight", "fc21.weight", "fc22.weight", "fc3.weight", "fc4.weight"]
        );
        let deep = names(VaeConfig {
            hidden: vec![200, 100],
            activation: Activation::Tanh,
            likelihood: Likelihood::GaussianLearned,
            ..VaeConfig::default()
        });
        assert_eq!(
            deep.iter().step_by(2).cloned().collect::<Vec<_>>(),
            [
                "encoder.0.weight",
                "encoder.2.weight",
                "mu.weight",
                "logvar.weight",
                "decoder.0.weight",
                "decoder.2.weight",
                "out.weight",
                "out_logvar.weight"
            ]
        );
        // One hidden layer but tanh: not pytorch/examples' model, so Sequential names.
        assert_eq!(
            names(VaeConfig { activation: Activation::Tanh, ..VaeConfig::default() })[0],
            "encoder.0.weight"
        );
    }

    #[test]
    fn active_units_and_the_output_bias() {
        let c = VaeConfig { input: 3, hidden: vec![], latent: 2, init: Init::Glorot, ..VaeConfig::default() };
        let mut vae = Vae::<f64>::new(c, &mut StdRng::seed_from_u64(2));
        // Glorot: zero biases, weights within ±√(6/(fan_in + fan_out)).
        assert!(vae.params.get("mu.bias").unwrap().to_vec().iter().all(|&b| b == 0.0));
        let bound = (6.0f64 / 5.0).sqrt();
        assert!(vae.params.get("mu.weight").unwrap().to_vec().iter().all(|w| w.abs() <= bound));
        // Unit 1's mean ignores the input: inactive; unit 0 varies with it: active.
        let i = vae.params.names().iter().position(|n| n == "mu.weight").unwrap();
        vae.params.tensors_mut()[i] = Tensor::from_vec(vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0], &[2, 3]);
        let x = Tensor::from_vec(vec![0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.5, 0.5, 0.0], &[3, 3]);
        let (var, active) = vae.active_units(&x).remove(0);
        assert_eq!(active, 1);
        assert!((var[0] - 1.0 / 6.0).abs() < 1e-12 && var[1] == 0.0, "{var:?}");
        vae.set_output_bias_to_logit(&Tensor::from_vec(vec![0.5, 0.0, 0.9], &[3]));
        let b = vae.params.get("out.bias").unwrap().to_vec();
        assert!(
            b[0].abs() < 1e-12
                && (b[1] - (1e-3f64 / 0.999).ln()).abs() < 1e-9
                && (b[2] - 9f64.ln()).abs() < 1e-9,
            "{b:?}"
        );
    }

    /// A log-σ head (Burda et al.'s `σ = exp(linear)`) is named `log_sigma`, and the
    /// encoder's log-variance is twice its output.
    #[test]
    fn a_log_sigma_head_doubles_into_the_log_variance() {
        let c = VaeConfig { input: 4, hidden: vec![3], latent: 2, ..VaeConfig::default() };
        let logvar_model = Vae::<f64>::new(
            VaeConfig { activation: Activation::Tanh, ..c.clone() },
            &mut StdRng::seed_from_u64(3),
        );
        let mut sigma_model = logvar_model.clone();
        sigma_model.config.sigma = SigmaHead::LogSigma;
        assert_eq!(
            names(VaeConfig { activation: Activation::Tanh, sigma: SigmaHead::LogSigma, ..c })[4],
            "log_sigma.weight"
        );
        let g = Graph::no_grad();
        let x = g.constant(Tensor::from_vec(vec![0.1, 0.9, 0.4, 0.0], &[1, 4]));
        let (mu_a, head) = logvar_model.bind(&g).encode(x);
        let (mu_b, logvar) = sigma_model.bind(&g).encode(x);
        assert_eq!(mu_a.value().to_vec(), mu_b.value().to_vec());
        let (h, lv) = (head.value().to_vec(), logvar.value().to_vec());
        assert!(h.iter().zip(&lv).all(|(h, lv)| *lv == 2.0 * h && *h != 0.0), "{h:?} {lv:?}");
    }

    #[test]
    fn a_second_stochastic_layer_is_named_and_sampled() {
        let c = VaeConfig {
            input: 6,
            hidden: vec![5],
            latent: 3,
            activation: Activation::Tanh,
            sigma: SigmaHead::LogSigma,
            upper: vec![crate::config::StochasticLayer { hidden: vec![4, 4], latent: 2 }].into(),
            ..VaeConfig::default()
        };
        let weights: Vec<String> = names(c.clone()).into_iter().filter(|n| n.ends_with(".weight")).collect();
        assert_eq!(
            weights[5..],
            [
                "encoder2.0.weight",
                "encoder2.2.weight",
                "mu2.weight",
                "log_sigma2.weight",
                "decoder2.0.weight",
                "decoder2.2.weight",
                "decoder2_mu.weight",
                "decoder2_log_sigma.weight"
            ]
        );
        let vae = Vae::<f64>::new(c, &mut StdRng::seed_from_u64(4));
        assert_eq!(vae.latent_sizes().as_slice(), [3, 2]);
        let z = vae.sample_prior(7, &mut StdRng::seed_from_u64(5));
        assert_eq!(z.shape(), &[7, 3], "codes of the first layer, drawn down from the top");
        let layers =
            vae.active_units(&Tensor::rand_uniform(&[9, 6], 0.0, 1.0, &mut StdRng::seed_from_u64(6)));
        assert_eq!(layers.iter().map(|(v, _)| v.len()).collect::<Vec<_>>(), [3, 2]);
    }

    /// The convolutional model's names are those of PyTorch's `nn.Sequential` of the same
    /// layers (`bench/load_in_pytorch.py` builds it): convolutions at 0 and 2, `Flatten` at 4,
    /// dense layers from 5; the decoder's dense layers, its projection, `Unflatten`, then the
    /// transposed convolutions, the last of which is `out`.
    #[test]
    fn a_convolutional_model_is_named_and_shaped_as_pytorchs() {
        let c = VaeConfig {
            hidden: vec![50],
            conv: Some(ConvNet { side: 28, channels: vec![32, 64] }).into(),
            ..VaeConfig::default()
        };
        let vae = Vae::<f32>::new(c, &mut StdRng::seed_from_u64(1));
        let weights: Vec<(String, Vec<usize>)> = vae
            .params
            .names()
            .iter()
            .zip(vae.params.tensors())
            .filter(|(n, _)| n.ends_with(".weight"))
            .map(|(n, t)| (n.clone(), t.shape().to_vec()))
            .collect();
        let want: Vec<(String, Vec<usize>)> = [
            ("encoder.0.weight", vec![32, 1, 4, 4]),
            ("encoder.2.weight", vec![64, 32, 4, 4]),
            ("encoder.5.weight", vec![50, 3136]),
            ("mu.weight", vec![20, 50]),
            ("logvar.weight", vec![20, 50]),
            ("decoder.0.weight", vec![50, 20]),
            ("decoder.2.weight", vec![3136, 50]),
            ("decoder.5.weight", vec![64, 32, 4, 4]),
            ("out.weight", vec![32, 1, 4, 4]),
        ]
        .into_iter()
        .map(|(n, s)| (n.to_string(), s))
        .collect();
        assert_eq!(weights, want);
        assert_eq!(vae.params.get("out.bias").unwrap().shape(), &[1]);
        let g = Graph::no_grad();
        let m = vae.bind(&g);
        let (mu, _) = m.encode(g.constant(Tensor::zeros(&[3, 784])));
        assert_eq!(mu.shape().as_slice(), &[3, 20]);
        assert_eq!(m.decode(mu).out.shape().as_slice(), &[3, 784]);
    }

    #[test]
    fn shapes_follow_the_configuration() {
        let c = VaeConfig {
            input: 100,
            hidden: vec![30, 20],
            decoder_hidden: Some(vec![7]),
            latent: 5,
            ..VaeConfig::default()
        };
        let vae = Vae::<f64>::new(c, &mut StdRng::seed_from_u64(1));
        let shapes: Vec<Vec<usize>> = vae.params.tensors().iter().map(|t| t.shape().to_vec()).collect();
        assert_eq!(
            shapes,
            [
                vec![30, 100],
                vec![30],
                vec![20, 30],
                vec![20],
                vec![5, 20],
                vec![5],
                vec![5, 20],
                vec![5],
                vec![7, 5],
                vec![7],
                vec![100, 7],
                vec![100]
            ]
        );
        let g = Graph::no_grad();
        let x = g.constant(Tensor::zeros(&[3, 100]));
        let m = vae.bind(&g);
        let (mu, _) = m.encode(x);
        assert_eq!(mu.shape().as_slice(), &[3, 5]);
        assert_eq!(m.decode(mu).out.shape().as_slice(), &[3, 100]);
    }

    #[test]
    fn attach_checks_the_variables_against_the_parameters() {
        let vae = Vae::<f64>::new(
            VaeConfig { input: 4, hidden: vec![3], latent: 2, ..VaeConfig::default() },
            &mut StdRng::seed_from_u64(0),
        );
        let g = autograd::Graph::new();
        let vars = vae.params.bind(&g).to_vec();
        assert!(vae.attach(&vars).is_ok());
        assert!(vae.attach(&vars[1..]).is_err(), "one variable short");
        let mut swapped = vars.clone();
        swapped.swap(0, 1);
        match vae.attach(&swapped) {
            Ok(_) => panic!("variables of other shapes were attached"),
            Err(e) => assert!(e.to_string().starts_with("attach: "), "{e}"),
        }
    }
}
