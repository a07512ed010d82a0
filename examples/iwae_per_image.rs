//! Each test image's importance-weighted estimate of `−log p(x)` from a checkpoint, one line
//! each: the run's k = 5000 evaluation image by image. Without `--seed` the draws are the
//! run's own, so for a run's final checkpoint the lines' mean is the `test_iwae_nll` that
//! `mnist_vae` of the same build writes (a build that draws the noise otherwise gives other
//! draws); with `--seed`, other draws show how far the estimate moves with them. For
//! comparing with another implementation on the same images, see `bench/iwae_in_pytorch.py`.
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
use vae::data::Mnist;
use vae::run::{check_iwae_time, iwae_nll_per_image, iwae_rng};

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
    /// Seed of the draws (without it, the run's own draws of its final evaluation).
    #[arg(long)]
    seed: Option<u64>,
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
    let trainer = checkpoint::from_bytes(&args.checkpoint, &bytes, &config)?.0;
    let mut test = Mnist::load(&args.data)?.test;
    test.truncate(args.images as usize);
    let k = args.k as usize;
    check_iwae_time(&trainer.model, &config, test.len(), k, "--k")?;
    let mut rng = args.seed.map_or_else(|| iwae_rng(&trainer), StdRng::seed_from_u64);
    let nll = iwae_nll_per_image(&trainer.model, &config, &test, k, &mut rng, false);
    for v in &nll {
        println!("{v:.5}");
    }
    let draws = args.seed.map_or("the run's draws".to_string(), |s| format!("seed {s}"));
    eprintln!(
        "mean {:.4} over {} test images (k = {k}, {draws}), {}",
        nll.iter().sum::<f64>() / nll.len().max(1) as f64,
        nll.len(),
        args.checkpoint.display()
    );
    Ok(())
}
