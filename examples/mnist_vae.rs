//! Trains a VAE on MNIST (or any IDX image data), writing metrics, checkpoints and images. The
//! defaults are pytorch/examples' VAE (784-400-20, ReLU, Adam 1e-3, batch 128, Bernoulli
//! likelihood on continuous pixels); `--hidden 200,200 --activation tanh --latent 50`,
//! `--arch conv` (a convolutional encoder and decoder), `--preset burda` and the other flags
//! describe other models. The flags are the configuration's own (`vae::config`), each with
//! its default, help and check beside the field it sets.
//!
//! ```sh
//! cargo run --release --example mnist_vae -- --help
//! ```

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use vae::config::cli::parse_run;
use vae::run::{run, RunOptions};

/// Train a variational autoencoder on MNIST (or any data in its IDX format).
#[derive(Parser, Debug)]
#[command(version, allow_negative_numbers = true)]
struct Args {
    /// Worker threads (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    threads: Option<u64>,
    #[command(flatten)]
    run: RunOptions,
}

fn main() -> ExitCode {
    let mut args = match parse_run::<Args>(std::env::args_os(), |a| &mut a.run.train) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    if let Some(n) = args.threads {
        if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(n as usize).build_global() {
            eprintln!("error: cannot start {n} threads: {e}");
            return ExitCode::FAILURE;
        }
    }
    args.run.progress = std::io::stdout().is_terminal();
    // Progress lines go to stdout; if it is closed or full, training goes on regardless.
    let say = |line: &str| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}").and_then(|_| out.flush());
    };
    match run(&args.run, say) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}
