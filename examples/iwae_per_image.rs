//! Each test image's importance-weighted estimate of `−log p(x)` from a checkpoint, one line
//! each, with the draws of a seed of your choice: the run's k = 5000 evaluation image by
//! image, for comparing it with another implementation's on the same images
//! (`bench/iwae_in_pytorch.py`) and for seeing how far the estimate moves with the draws.
//!
//! ```sh
//! cargo run --release --example iwae_per_image -- \
//!     --checkpoint results/burda-2l-vae-k1/checkpoint.safetensors --images 500 --seed 2
//! ```
//!
//! A model trained on binarized images is evaluated on the fixed binarization of the test
//! set that `mnist_vae` evaluates (an image already binary stays as it is).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rand::rngs::StdRng;
use rand::SeedableRng;
use vae::checkpoint;
use vae::data::{Mnist, TEST_BINARIZATION_SEED};
use vae::elbo::iwae_log_likelihood;
use vae::run::{check_iwae_time, IWAE_ROWS};

/// Print each test image's importance-weighted estimate of −log p(x).
#[derive(Parser, Debug)]
struct Args {
    /// A checkpoint written by mnist_vae.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Directory of the MNIST IDX files.
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Test images (the first this many).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    images: u64,
    /// Draws of z per image.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    k: u64,
    /// Seed of the draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match estimate(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

fn estimate(args: &Args) -> vae::Result<()> {
    let bytes = checkpoint::read_file(&args.checkpoint)?;
    let (config, _) = checkpoint::read_meta(&args.checkpoint, &bytes)?;
    let model = checkpoint::from_bytes(&args.checkpoint, &bytes, &config)?.0.model;
    let mut test = Mnist::load(&args.data)?.test;
    test.truncate(args.images as usize);
    if config.binarize {
        test = test.binarized(TEST_BINARIZATION_SEED);
    }
    let k = args.k as usize;
    check_iwae_time(&model, &config, test.len(), k, "--k")?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut total = 0.0;
    for i in 0..test.len() {
        let x = test.intensities::<f32>(&[i]);
        let ll = tensor::with_workers_awake(|| iwae_log_likelihood(&model, &x, k, IWAE_ROWS, &mut rng));
        let nll = -f64::from(ll.to_vec()[0]);
        total += nll;
        println!("{nll:.5}");
    }
    eprintln!(
        "mean {:.4} over {} test images (k = {k}, seed {}), {}",
        total / test.len() as f64,
        test.len(),
        args.seed,
        args.checkpoint.display()
    );
    Ok(())
}
