//! Trains the VAE of pytorch/examples (784-400-20, ReLU, Adam 1e-3, batch 128, Bernoulli
//! likelihood on continuous pixels) on MNIST, writing metrics, checkpoints and images.
//!
//! ```sh
//! cargo run --release --example mnist_vae -- --help
//! ```

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use vae::elbo::{ElboConfig, Estimator};
use vae::model::{Likelihood, VaeConfig};
use vae::optim::OptimizerKind;
use vae::run::{run, RunOptions};
use vae::train::TrainConfig;

/// Train a variational autoencoder on MNIST (or any data in its IDX format).
#[derive(Parser, Debug)]
#[command(version, about, allow_negative_numbers = true)]
struct Args {
    /// Directory of the four IDX files (raw or .gz).
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Epochs to train (in all, when resuming).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    epochs: u64,
    /// Images per optimizer step.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: u64,
    /// Hidden units of the encoder and decoder.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u64).range(1..))]
    hidden: u64,
    /// Latent dimensions (2 also draws the manifold and the latent scatter).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    latent: u64,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3, value_parser = positive_f64)]
    lr: f64,
    /// Seed of initialization, shuffling and noise.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Decoder distribution: bernoulli, gaussian (unit variance) or gaussian-learned.
    #[arg(long, default_value = "bernoulli")]
    likelihood: Likelihood,
    /// Draw binary pixels afresh each epoch (dynamic binarization).
    #[arg(long)]
    binarize: bool,
    /// Monte Carlo samples of z per image (L).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    samples: u64,
    /// Weight of the KL term (β).
    #[arg(long, default_value_t = 1.0, value_parser = non_negative_f64)]
    beta: f64,
    /// Encoder gradient estimator: reparam or score (REINFORCE).
    #[arg(long, default_value = "reparam")]
    estimator: Estimator,
    /// Optimizer: adam, sgd (momentum 0.9) or adagrad.
    #[arg(long, default_value = "adam")]
    optimizer: OptimizerKind,
    /// Samples of the importance-weighted bound on the test set after training (0 = off).
    #[arg(long, default_value_t = 0)]
    iwae_k: usize,
    /// Train on only the first N training images.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    train_limit: Option<u64>,
    /// Worker threads (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    threads: Option<u64>,
    /// Output directory.
    #[arg(long, default_value = "runs/mnist_vae")]
    out: PathBuf,
    /// Continue from this checkpoint.
    #[arg(long, value_parser = readable_file)]
    resume: Option<PathBuf>,
    /// Overwrite an output directory that holds another configuration's checkpoint.
    #[arg(long)]
    force: bool,
    /// Check every op for NaN and infinity, and name the first op and parameter that went
    /// non-finite (slower; like torch.autograd.detect_anomaly).
    #[arg(long)]
    detect_anomaly: bool,
}

fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a positive number")),
    }
}

fn non_negative_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a non-negative number")),
    }
}

fn readable_file(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    std::fs::File::open(&p).map_err(|e| format!("cannot read '{s}': {e}"))?;
    if !p.is_file() {
        return Err(format!("'{s}' is not a file"));
    }
    Ok(p)
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(n) = args.threads {
        if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(n as usize).build_global() {
            eprintln!("error: cannot start {n} threads: {e}");
            return ExitCode::FAILURE;
        }
    }
    let train = TrainConfig {
        model: VaeConfig {
            input: 784,
            hidden: args.hidden as usize,
            latent: args.latent as usize,
            likelihood: args.likelihood,
        },
        epochs: args.epochs as usize,
        batch_size: args.batch_size as usize,
        lr: args.lr,
        seed: args.seed,
        binarize: args.binarize,
        elbo: ElboConfig { samples: args.samples as usize, beta: args.beta, estimator: args.estimator },
        optimizer: args.optimizer,
        train_limit: args.train_limit.map(|n| n as usize),
    };
    let opts = RunOptions {
        train,
        data_dir: args.data,
        out_dir: args.out,
        iwae_k: args.iwae_k,
        resume: args.resume,
        force: args.force,
        progress: std::io::stdout().is_terminal(),
        detect_anomaly: args.detect_anomaly,
    };
    match run(&opts, |line| println!("{line}")) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
