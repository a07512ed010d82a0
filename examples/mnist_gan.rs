//! Trains a small MLP GAN on MNIST with the same engine as the VAE (two parameter sets, two
//! Adam optimizers, `detach` in the discriminator's step), writing a grid of 64 samples from
//! fixed noise after every epoch (`samples_epoch_N.png`, and `samples.png` for the latest).
//!
//! ```sh
//! cargo run --release --example mnist_gan
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use lessons::gan::Gan;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::Tensor;
use vae::data::Mnist;
use vae::images::write_grid;
use vae::io::MemoryLimit;

/// Train a GAN on MNIST.
#[derive(Parser, Debug)]
struct Args {
    /// Directory of the MNIST IDX files.
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Epochs (passes over the training images).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    epochs: u64,
    /// Images per step.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: u64,
    /// Learning rate of both players.
    #[arg(long, default_value_t = 2e-4)]
    lr: f64,
    /// Noise dimensions.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    noise: u64,
    /// Train on only the first N training images.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    train_limit: Option<u64>,
    /// Seed of initialization, shuffling and noise.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output directory for the sample grids.
    #[arg(long, default_value = "runs/mnist_gan")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !(args.lr.is_finite() && args.lr > 0.0) {
        eprintln!("error: --lr must be a positive number, not {}", args.lr);
        return ExitCode::from(2);
    }
    if let Err(e) = vae::config::in_f32("--lr", args.lr) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    match train(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

fn train(args: &Args) -> vae::Result<()> {
    vae::io::prepare_out_dir(&args.out)?;
    let mut data = Mnist::load(&args.data)?.train;
    if let Some(n) = args.train_limit {
        data.truncate(n as usize);
    }
    let batch = (args.batch_size as usize).min(data.len());
    let images = (data.len() * data.dim()) as u128;
    let need = |noise: usize, batch: usize| Gan::bytes_needed(data.dim(), noise, batch) + images;
    MemoryLimit::current().require(
        need(args.noise as usize, batch),
        &[
            ("--noise", args.noise.to_string(), need(1, batch)),
            ("--batch-size", args.batch_size.to_string(), need(args.noise as usize, 1)),
        ],
    )?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut gan = Gan::new(data.dim(), args.noise as usize, args.lr, &mut rng);
    let fixed = Tensor::<f32>::randn(&[64, args.noise as usize], &mut rng);
    let (h, w) = data.image_shape();
    let start = Instant::now();
    for epoch in 1..=args.epochs {
        let (mut d_sum, mut g_sum, mut steps) = (0.0, 0.0, 0usize);
        for idx in data.batches(args.batch_size as usize, Some(&mut rng)) {
            let losses = tensor::with_workers_awake(|| gan.step(&data.intensities::<f32>(&idx), &mut rng))?;
            d_sum += losses.discriminator;
            g_sum += losses.generator;
            steps += 1;
        }
        let grid = gan.sample(&fixed);
        write_grid(&args.out.join(format!("samples_epoch_{epoch}.png")), &grid, h, w, 8)?;
        write_grid(&args.out.join("samples.png"), &grid, h, w, 8)?;
        println!(
            "epoch {epoch} d_loss {:.4} g_loss {:.4} seconds {:.1}",
            d_sum / steps as f64,
            g_sum / steps as f64,
            start.elapsed().as_secs_f64()
        );
    }
    println!("wrote {}", args.out.join("samples.png").display());
    Ok(())
}
