//! The lessons beside the VAE: small models the guide derives and checks against closed
//! forms, built on the same engine ([`autograd`], [`tensor`]) and toolkit ([`vae`]'s layers,
//! optimizers and training step) as the VAE itself. Not part of the `vae` library: the
//! examples and the guide use them.
//!
//! - [`theory`], [`linalg`]: linear regression, the linear and the denoising autoencoder,
//!   the multivariate Gaussian, and the small dense linear algebra that checks them
//!   against closed forms.
//! - [`info`]: information, entropy, cross-entropy and the KL divergence of discrete
//!   distributions.
//! - [`mixture`]: a mixture of Bernoulli images fit by EM (the discrete-latent
//!   counterpart of the VAE) and by gradient ascent.
//! - [`gan`]: a generative adversarial network beside the VAE (generator, discriminator,
//!   two optimizers).
//! - [`amortization`]: the amortization gap, by refining each image's `q(z|x)` from the
//!   encoder's.
//! - [`holes`]: how far a VAE's aggregate posterior is from its prior, and where the prior's
//!   samples land in regions the encoder never uses.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod amortization;
pub mod gan;
pub mod holes;
pub mod info;
pub mod linalg;
pub mod mixture;
pub mod theory;
