//! The amortization gap of a trained VAE: for the first test images, the ELBO of the
//! encoder's `q(z|x)` against that of `q` refined image by image (Adam on each image's own
//! mean and log-variance, from the encoder's, the decoder fixed), both estimated with the
//! same number of draws of z. The refined ELBO is higher; the difference is at least the
//! amortization gap.
//!
//! ```sh
//! cargo run --release --example amortization_gap
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use lessons::amortization::{elbo_per_image, encoder_q, refine};
use rand::rngs::StdRng;
use rand::SeedableRng;
use vae::checkpoint;
use vae::data::Mnist;

/// Measure the amortization gap of a checkpoint.
#[derive(Parser, Debug)]
struct Args {
    /// A checkpoint written by mnist_vae (one stochastic layer).
    #[arg(long, default_value = "web/model/mnist-2d.safetensors")]
    checkpoint: PathBuf,
    /// Directory of the MNIST IDX files.
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Test images (the first this many).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    images: u64,
    /// Adam steps of the per-image refinement.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    steps: u64,
    /// Learning rate of the refinement.
    #[arg(long, default_value_t = 0.01)]
    lr: f64,
    /// Draws of z per image for each ELBO estimate.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    eval_samples: u64,
    /// Seed of every draw.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match measure(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

fn measure(args: &Args) -> vae::Result<()> {
    vae::config::in_f32("--lr", args.lr)?;
    let bytes = checkpoint::read_file(&args.checkpoint)?;
    let (config, _) = checkpoint::read_meta(&args.checkpoint, &bytes)?;
    if !config.model.upper.is_empty() {
        return Err(vae::VaeError::Config(format!(
            "{}: a model with {} stochastic layers; this measure is for one",
            args.checkpoint.display(),
            config.model.upper.len() + 1
        )));
    }
    let model = checkpoint::from_bytes(&args.checkpoint, &bytes, &config)?.0.model;
    let mut test = Mnist::load(&args.data)?.test;
    test.truncate(args.images as usize);
    let x = test.intensities::<f32>(&(0..test.len()).collect::<Vec<_>>());
    let mut rng = StdRng::seed_from_u64(args.seed);
    let start = encoder_q(&model, &x);
    let refined = refine(&model, &x, &start, args.steps as usize, args.lr, &mut rng)?;
    let samples = args.eval_samples as usize;
    // The same evaluation draws for both (one stream, reseeded).
    let eval = |q| elbo_per_image(&model, &x, q, samples, &mut StdRng::seed_from_u64(args.seed ^ 0xe7a1));
    let (before, after) = (eval(&start), eval(&refined));
    println!(
        "{} test images, {}; ELBO per image from {samples} draws of z",
        test.len(),
        args.checkpoint.display()
    );
    println!(
        "encoder's q {before:.3}, refined per image ({} Adam steps at {}) {after:.3}",
        args.steps, args.lr
    );
    println!("amortization gap at least {:.3} nats per image", after - before);
    Ok(())
}
