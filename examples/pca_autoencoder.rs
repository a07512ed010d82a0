//! A linear autoencoder finds the PCA subspace: trains x̂ = x·Eᵀ·Dᵀ with k hidden units on
//! centered MNIST images with the squared error, computes the top-k principal subspace of the
//! same data by subspace iteration on its covariance, and prints the principal angles
//! between the two.
//!
//! ```sh
//! cargo run --release --example pca_autoencoder -- --k 10
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use lessons::linalg::{principal_angles, top_eigenvectors};
use lessons::theory::{covariance, train_linear_autoencoder};
use rand::rngs::StdRng;
use rand::SeedableRng;
use vae::data::Mnist;

/// Linear autoencoder versus PCA on MNIST.
#[derive(Parser, Debug)]
struct Args {
    /// Directory of the MNIST IDX files.
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Hidden units (the subspace dimension).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=784))]
    k: u64,
    /// Training images used.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    train_limit: u64,
    /// Epochs of Adam.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u64).range(1..))]
    epochs: u64,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut train = match Mnist::load(&args.data) {
        Ok(m) => m.train,
        Err(e) => {
            return e.report();
        }
    };
    train.truncate(args.train_limit as usize);
    let k = args.k as usize;
    let idx: Vec<usize> = (0..train.len()).collect();
    let x = train.intensities::<f64>(&idx);
    let (cov, mean) = covariance(&x);
    let pca = top_eigenvectors(&cov, k, 300, args.seed);
    let centered = (&x - &mean).cast::<f32>();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let (decoder, mse) =
        match train_linear_autoencoder(&centered, k, args.epochs as usize, 128, 1e-3, &mut rng) {
            Ok(r) => r,
            Err(e) => {
                return e.report();
            }
        };
    let angles = principal_angles(&decoder.cast::<f64>(), &pca);
    // The best any rank-k linear map can do: the variance outside the top-k subspace.
    let total_var: f64 = (0..cov.shape()[0]).map(|i| cov.get(&[i, i]).unwrap()).sum();
    let captured: f64 = (pca.t().matmul(&cov).matmul(&pca)).to_vec().iter().step_by(k + 1).sum();
    println!("{} images, k = {k}, {} epochs", train.len(), args.epochs);
    println!("autoencoder squared error per image {mse:.4}; PCA optimum {:.4}", total_var - captured);
    let deg: Vec<String> = angles.iter().map(|a| format!("{:.2}", a.to_degrees())).collect();
    println!("principal angles to the top-{k} PCA subspace (degrees, largest first): {}", deg.join(" "));
    ExitCode::SUCCESS
}
