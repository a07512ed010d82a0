//! Fits a mixture of K Bernoulli images to binarized MNIST by EM (the discrete-latent model
//! beside the VAE), printing the exact train and test log-likelihood per image after every
//! iteration, and writes the K pixel-mean images.
//!
//! The training images are binarized once with `--seed`; the test images with
//! `vae::data::TEST_BINARIZATION_SEED`, the same binary test set on which
//! `mnist_vae --binarize --iwae-k 5000` evaluates its bound.
//!
//! ```sh
//! cargo run --release --example mixture_em -- --k 50 --iters 30
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use lessons::mixture::BernoulliMixture;
use rand::rngs::StdRng;
use rand::SeedableRng;
use vae::data::{Mnist, TEST_BINARIZATION_SEED};
use vae::images::write_grid;

/// Fit a mixture of Bernoulli images to binarized MNIST by EM.
#[derive(Parser, Debug)]
struct Args {
    /// Directory of the MNIST IDX files.
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Mixture components.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    k: u64,
    /// EM iterations.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    iters: u64,
    /// Pseudo-counts of 0 and of 1 for every pixel mean (a Beta(a + 1, a + 1) prior); 0 is
    /// maximum likelihood.
    #[arg(long, default_value_t = 1.0)]
    prior: f64,
    /// Seed of the training set's binarization and of the starting components.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Train on only the first N training images.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    train_limit: Option<u64>,
    /// Where to write means.png (the K mean images).
    #[arg(long, default_value = "runs/mixture_em")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !(args.prior.is_finite() && args.prior >= 0.0) {
        eprintln!("error: --prior must be a non-negative number, not {}", args.prior);
        return ExitCode::from(2);
    }
    match fit(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

fn fit(args: &Args) -> vae::Result<()> {
    vae::io::prepare_out_dir(&args.out)?;
    let mnist = Mnist::load(&args.data)?;
    let mut train = mnist.train;
    if let Some(n) = args.train_limit {
        train.truncate(n as usize);
    }
    let train = train.binarized(args.seed);
    let test = mnist.test.binarized(TEST_BINARIZATION_SEED);
    let k = args.k as usize;
    if k > train.len() {
        return Err(vae::VaeError::Config(format!(
            "--k {k} is more than the {} training images",
            train.len()
        )));
    }
    let all = |n: usize| (0..n).collect::<Vec<_>>();
    let x = train.intensities::<f32>(&all(train.len()));
    let xt = test.intensities::<f32>(&all(test.len()));
    let mut model = BernoulliMixture::init(&x, k, &mut StdRng::seed_from_u64(args.seed))?;
    println!("K {k}, prior {}, {} training and {} test images", args.prior, train.len(), test.len());
    let start = Instant::now();
    // Line t describes the model after t updates: EM's E-step computes its training
    // log-likelihood on the way to update t + 1.
    let iters = args.iters as usize;
    for it in 0..=iters {
        let test_ll = model.log_likelihood(&xt) / test.len() as f64;
        let train_ll = if it < iters {
            model.em_step(&x, args.prior).log_likelihood
        } else {
            model.log_likelihood(&x) / train.len() as f64
        };
        println!(
            "iter {it} train_ll {train_ll:.4} test_ll {test_ll:.4} seconds {:.1}",
            start.elapsed().as_secs_f64()
        );
    }
    let (h, w) = train.image_shape();
    let path = args.out.join("means.png");
    write_grid(&path, &model.means, h, w, 10.min(k))?;
    println!("wrote {}", path.display());
    Ok(())
}
