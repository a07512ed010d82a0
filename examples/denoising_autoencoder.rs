//! Input noise keeps an over-complete autoencoder from learning the identity: trains the same
//! MLP (784 → 1000 → 784) once on clean inputs and once on masked inputs, then asks both to
//! clean up masked test digits. Prints the test errors and writes a PNG of clean, noisy and
//! denoised digits.
//!
//! ```sh
//! cargo run --release --example denoising_autoencoder
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use lessons::theory::{mean_squared_error, Autoencoder, Corruption};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::Tensor;
use vae::data::Mnist;
use vae::images::write_grid;

/// A plain and a denoising over-complete autoencoder on MNIST.
#[derive(Parser, Debug)]
struct Args {
    /// Directory of the MNIST IDX files.
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Hidden units (more than 784 makes the autoencoder over-complete).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    hidden: u64,
    /// Fraction of pixels the noise sets to zero.
    #[arg(long, default_value_t = 0.5)]
    mask: f64,
    /// Training images used.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    train_limit: u64,
    /// Epochs of Adam for each model.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    epochs: u64,
    /// Where the PNG goes.
    #[arg(long, default_value = "runs/denoising_autoencoder.png")]
    out: PathBuf,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !(0.0..1.0).contains(&args.mask) {
        eprintln!("error: --mask must be in [0, 1)");
        return ExitCode::from(2);
    }
    if let Err(e) = vae::io::prepare_out_file(&args.out) {
        return e.report();
    }
    let mnist = match Mnist::load(&args.data) {
        Ok(m) => m,
        Err(e) => {
            return e.report();
        }
    };
    let (mut train, test) = (mnist.train, mnist.test);
    train.truncate(args.train_limit as usize);
    let all = |n: usize| (0..n).collect::<Vec<_>>();
    let x = train.intensities::<f32>(&all(train.len()));
    let clean = test.intensities::<f32>(&all(test.len()));
    let mut rng = StdRng::seed_from_u64(args.seed);
    let noise = Corruption::Mask(args.mask);
    let noisy = noise.apply(&clean, &mut rng);
    let (d, h, epochs) = (train.dim(), args.hidden as usize, args.epochs as usize);

    let mut plain = Autoencoder::new(d, h, &mut StdRng::seed_from_u64(args.seed));
    let mut denoising = Autoencoder::new(d, h, &mut StdRng::seed_from_u64(args.seed));
    let trained = plain
        .train(&x, Corruption::None, epochs, 128, 1e-3, &mut rng)
        .and_then(|_| denoising.train(&x, noise, epochs, 128, 1e-3, &mut rng));
    if let Err(e) = trained {
        return e.report();
    }

    let (by_plain, by_dae) = (plain.reconstruct(&noisy), denoising.reconstruct(&noisy));
    println!(
        "{} training images, {d} → {h} → {d}, masking noise {}, {epochs} epochs each",
        train.len(),
        args.mask
    );
    println!("test squared error per image against the clean digits:");
    println!("  identity (the noisy input itself)   {:>8.3}", mean_squared_error(&noisy, &clean));
    println!("  trained on clean inputs             {:>8.3}", mean_squared_error(&by_plain, &clean));
    println!("  trained on noisy inputs (denoising) {:>8.3}", mean_squared_error(&by_dae, &clean));
    println!(
        "reconstruction of clean test digits: plain {:.3}, denoising {:.3}",
        mean_squared_error(&plain.reconstruct(&clean), &clean),
        mean_squared_error(&denoising.reconstruct(&clean), &clean)
    );

    // Rows of ten: clean, noisy, denoised by the plain model, denoised by the denoising model.
    let rows: Vec<f32> =
        [&clean, &noisy, &by_plain, &by_dae].iter().flat_map(|t| t.narrow(0, 0, 10).to_vec()).collect();
    let (ih, iw) = test.image_shape();
    if let Err(e) = write_grid(&args.out, &Tensor::from_vec(rows, &[40, d]), ih, iw, 10) {
        return e.report();
    }
    println!("wrote {} (rows: clean, noisy, plain model, denoising model)", args.out.display());
    ExitCode::SUCCESS
}
