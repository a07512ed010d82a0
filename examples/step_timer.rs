//! Times the VAE training step (forward, backward, Adam) on MNIST batches, for
//! `bench/compare_pytorch.py`. Prints one JSON line: the median and mean milliseconds, the
//! GFLOP/s of the step's matrix products at the median, and the host's CPU family.
//!
//! ```sh
//! cargo run --release --example step_timer -- --threads 2 --steps 200
//! cargo run --release --example step_timer -- --model burda --objective iwae --k 5
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use vae::config::{ConvNet, Objective};
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
    /// The model and recipe: default (pytorch/examples', batch 128) or burda (784-200-200-50
    /// tanh, batch 20, binarized).
    #[arg(long, default_value = "default")]
    model: Model,
    /// The objective (elbo, elbo-mc or iwae).
    #[arg(long, default_value = "elbo")]
    objective: Objective,
    /// Stochastic layers of the burda model (1 or 2).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=2))]
    layers: u64,
    /// Samples of z per image.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    k: u64,
}

/// Which recipe to time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Model {
    /// pytorch/examples' VAE, batch 128.
    Default,
    /// Burda et al.'s one-stochastic-layer model, batch 20.
    Burda,
    /// The default recipe with `--arch conv`'s model: 1→32→64 channels of 4×4 stride-2
    /// convolutions, a dense layer to the latent, and the mirror image; batch 128.
    Conv,
}

/// The `cpu family` line of /proc/cpuinfo (25: Zen 3/4, 26: Zen 5), if there is one.
fn cpu_family() -> Option<u32> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("cpu family"))?;
    line.split(':').nth(1)?.trim().parse().ok()
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
    let mut config = match args.model {
        Model::Default => TrainConfig::default(),
        Model::Burda => TrainConfig::burda(args.objective, args.k as usize, args.layers as usize),
        Model::Conv => {
            let mut c = TrainConfig::default();
            c.model.hidden.clear();
            c.model.conv = Some(ConvNet { side: 28, channels: vec![32, 64] });
            c
        }
    };
    config.elbo.objective = args.objective;
    config.elbo.samples = args.k as usize;
    if let Err(e) = config.validate() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let macs = config.step_macs();
    let mut trainer = Trainer::new(config.clone());
    let mut rng = stream_rng(1, 1, Stream::Train);
    let batches = train.batches(config.batch_size, Some(&mut rng));
    let mut times = Vec::with_capacity(args.steps as usize);
    for (i, idx) in batches.iter().cycle().take((args.warmup + args.steps) as usize).enumerate() {
        let start = Instant::now();
        let x = train.batch::<f32, _>(idx, config.binarize.then_some(&mut rng));
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
    let median = times[times.len() / 2];
    println!(
        "{{\"median_ms\": {median:.4}, \"mean_ms\": {mean:.4}, \"threads\": {}, \"gflops\": {:.1}, \"cpu_family\": {}}}",
        args.threads,
        2.0 * macs as f64 / (median * 1e-3) / 1e9,
        cpu_family().map_or("null".to_string(), |f| f.to_string())
    );
    ExitCode::SUCCESS
}
