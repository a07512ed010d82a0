//! How far a trained VAE's aggregate posterior `q(z) = (1/N) Σ q(z | x_n)` over test images
//! is from the prior `N(0, I)` its samples are drawn from: per latent dimension (moments and
//! the moment-matched KL), jointly (MMD against prior draws, beside the MMD of two prior
//! draws), and at the prior's own samples (`log q(z)/p(z)`). Writes `holes.png`: the prior
//! samples in the deepest holes (top rows) and in the densest regions (bottom rows),
//! decoded, and prints how far each group's images are from the nearest real test digit.
//!
//! ```sh
//! cargo run --release --example aggregate_posterior
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use lessons::holes::{mmd2, nearest_distance, AggregatePosterior};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::Tensor;
use vae::checkpoint;
use vae::data::Mnist;

/// Measure the gap between a checkpoint's aggregate posterior and its prior.
#[derive(Parser, Debug)]
struct Args {
    /// A checkpoint written by mnist_vae (one stochastic layer).
    #[arg(long, default_value = "web/model/mnist-2d.safetensors")]
    checkpoint: PathBuf,
    /// Directory of the MNIST IDX files.
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Test images whose posteriors make up q(z) (the first this many).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(2..=10_000))]
    images: u64,
    /// Draws from the prior.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(20..=20_000))]
    prior_samples: u64,
    /// Seed of every draw.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to write holes.png.
    #[arg(long, default_value = "runs/aggregate_posterior")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match measure(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

/// Prior samples shown per group in holes.png, and columns of the picture.
const SHOWN: usize = 16;

fn measure(args: &Args) -> vae::Result<()> {
    vae::io::prepare_out_dir(&args.out)?;
    let bytes = checkpoint::read_file(&args.checkpoint)?;
    let (config, _) = checkpoint::read_meta(&args.checkpoint, &bytes)?;
    if !config.model.upper.is_empty() {
        return Err(vae::VaeError::Config(format!(
            "{}: a model with {} stochastic layers; this measure is for one",
            args.checkpoint.display(),
            config.model.upper.len() + 1
        )));
    }
    let (trainer, _) = checkpoint::from_bytes(&args.checkpoint, &bytes, &config)?;
    let model = trainer.model;
    let mut test = Mnist::load(&args.data)?.test;
    test.truncate(args.images as usize);
    let x = test.intensities::<f32>(&(0..test.len()).collect::<Vec<_>>());
    let q = AggregatePosterior::of(&model, &x);
    let d = config.model.latent;
    let mut rng = StdRng::seed_from_u64(args.seed);

    println!("{} test images, latent {d}, {}", test.len(), args.checkpoint.display());
    println!("dim     mean      var  KL(moment-matched ‖ N(0,1))");
    let dims = q.per_dimension();
    for (j, g) in dims.iter().enumerate() {
        println!("{j:>3} {:>8.4} {:>8.4} {:>8.4}", g.mean, g.var, g.kl);
    }
    println!("sum of the per-dimension KLs {:.4}", dims.iter().map(|g| g.kl).sum::<f64>());

    let m = args.prior_samples as usize;
    let bandwidth = (d as f64).sqrt();
    let from_q = q.sample(&mut rng);
    let prior = Tensor::<f64>::randn(&[m, d], &mut rng);
    let prior2 = Tensor::<f64>::randn(&[m, d], &mut rng);
    println!(
        "MMD² (Gaussian kernel, bandwidth √d): q(z) against the prior {:.5}; two prior draws {:.5}",
        mmd2(&from_q, &prior, bandwidth),
        mmd2(&prior2, &prior, bandwidth)
    );

    let ratio = q.log_ratio(&prior);
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| ratio[a].total_cmp(&ratio[b]));
    let below = ratio.iter().filter(|&&r| r < -(10f64.ln())).count();
    println!(
        "prior samples where q(z) < p(z)/10: {below} of {m} ({:.1} %); median log q/p {:.3}",
        100.0 * below as f64 / m as f64,
        ratio[order[m / 2]]
    );
    let decile = (m / 10).max(1);
    let decode = |rows: &[usize]| model.decode_mean(&prior.select_rows(rows).cast::<f32>());
    let (holes, dense) = (&order[..decile], &order[m - decile..]);
    let distance = |rows: &[usize]| {
        let e = nearest_distance(&decode(rows), &x);
        e.iter().sum::<f64>() / e.len() as f64
    };
    println!(
        "squared distance from a decoded prior sample to the nearest test digit: lowest tenth of q/p {:.2}, highest tenth {:.2}",
        distance(holes),
        distance(dense)
    );
    let shown: Vec<usize> =
        holes[..SHOWN.min(decile)].iter().chain(&dense[decile - SHOWN.min(decile)..]).copied().collect();
    let path = args.out.join("holes.png");
    let side = (x.shape()[1] as f64).sqrt() as usize;
    vae::images::write_grid(&path, &decode(&shown), side, side, SHOWN / 2)?;
    println!("wrote {} (top two rows: deepest holes; bottom two: densest)", path.display());
    Ok(())
}
