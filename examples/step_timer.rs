//! Times the VAE training step (forward, backward, Adam) on MNIST batches, for
//! `bench/compare_pytorch.py`. Prints one JSON line with the median and mean milliseconds.
//!
//! ```sh
//! cargo run --release --example step_timer -- --threads 2 --steps 200
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use vae::data::Mnist;
use vae::train::{stream_rng, Stream, TrainConfig, Trainer};

/// Time training steps of the default VAE.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// Directory of the MNIST IDX files.
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Worker threads.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    threads: u64,
    /// Timed steps.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    steps: u64,
    /// Untimed steps first.
    #[arg(long, default_value_t = 20)]
    warmup: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(args.threads as usize).build_global() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let train = match Mnist::load(&args.data) {
        Ok(m) => m.train,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut trainer = Trainer::new(TrainConfig::default());
    let mut rng = stream_rng(1, 1, Stream::Train);
    let batches = train.batches(128, Some(&mut rng));
    let mut times = Vec::with_capacity(args.steps as usize);
    for (i, idx) in batches.iter().cycle().take((args.warmup + args.steps) as usize).enumerate() {
        let start = Instant::now();
        let x = train.intensities::<f32>(idx);
        if let Err(e) = trainer.step(x, &mut rng) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        if i as u64 >= args.warmup {
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    times.sort_by(f64::total_cmp);
    println!(
        "{{\"median_ms\": {:.4}, \"mean_ms\": {:.4}, \"threads\": {}}}",
        times[times.len() / 2],
        mean,
        args.threads
    );
    ExitCode::SUCCESS
}
