//! A variational autoencoder (Kingma & Welling) on MNIST, trained with [`autograd`].
//!
//! - [`config`]: the whole configuration of a run, in one place, serialized into checkpoints.
//! - [`model`]: the Gaussian encoder, the reparameterization and the decoder
//!   (Bernoulli, Gaussian with unit or learned variance), with PyTorch's parameter names.
//! - [`elbo`]: log-likelihoods, the analytic KL, the Monte Carlo ELBO with the
//!   reparameterization or score-function estimator, and the importance-weighted bound.
//! - [`optim`]: Adam, SGD with momentum, Adagrad.
//! - [`data`]: the IDX reader, batches, dynamic binarization.
//! - [`train`]: training and evaluation with reproducible random streams.
//! - [`checkpoint`], [`images`], [`plot`], [`io`], [`run`]: files, pictures and the whole run.
//!
//! The learner's material built on this toolkit (linear regression, autoencoders, EM, a
//! GAN, information measures) is the `lessons` crate.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod elbo;
pub mod error;
pub mod images;
pub mod io;
pub mod model;
pub mod nn;
pub mod optim;
pub mod plot;
pub mod run;
pub mod train;

pub use error::{Result, VaeError};
