//! Times the VAE training step (forward, backward, Adam) on MNIST batches, for
//! `bench/compare_pytorch.py`. Prints one JSON line: the median and mean milliseconds, the
//! GFLOP/s of the step's matrix products at the median, and the host's CPU family.
//! With `--eval-k K` it times instead the importance-weighted evaluation of one test image
//! after another (`K` draws each, the k = 5000 test NLL's unit of work); with
//! `--peak`, the f32 FMA peak this machine gives, against which to read the GFLOP/s.
//!
//! The model, objective and batch are `mnist_vae`'s flags (the configuration's own), so
//! `--preset burda`, `--arch conv`, `--stochastic-layers 2`, `--objective iwae --k 5` and the
//! rest time the step those flags train.
//!
//! ```sh
//! cargo run --release --example step_timer -- --threads 2 --steps 200
//! cargo run --release --example step_timer -- --preset burda --objective iwae --k 5
//! cargo run --release --example step_timer -- --preset burda --eval-k 5000 --warmup 1 --steps 8
//! cargo run --release --example step_timer -- --peak --threads 1
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use vae::config::cli::parse_run;
use vae::data::{Mnist, TEST_BINARIZATION_SEED};
use vae::elbo::iwae_log_likelihood;
use vae::io::MemoryLimit;
use vae::run::{check_iwae_time, IWAE_ROWS};
use vae::train::{stream_rng, Stream, TrainConfig, Trainer};

/// Time training steps (or evaluations) of a VAE.
#[derive(Parser, Debug)]
#[command(allow_negative_numbers = true)]
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
    /// Time the k-sample evaluation of `--steps` test images, one at a time, instead of
    /// training steps (an untrained model: the same products).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    eval_k: Option<u64>,
    /// Measure instead the host's f32 FMA peak on `--threads` threads (independent chains of
    /// fused multiply-adds in the widest vectors the CPU has), the reference for the
    /// steps' GFLOP/s on a virtual machine whose clock and vector width are its own.
    #[arg(long)]
    peak: bool,
    /// Most decoder rows live at once in the evaluation.
    #[arg(long, default_value_t = IWAE_ROWS as u64, value_parser = clap::value_parser!(u64).range(1..))]
    eval_rows: u64,
    #[command(flatten)]
    config: TrainConfig,
}

/// The `cpu family` line of /proc/cpuinfo (25: Zen 3/4, 26: Zen 5), if there is one.
fn cpu_family() -> Option<u32> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("cpu family"))?;
    line.split(':').nth(1)?.trim().parse().ok()
}

fn main() -> ExitCode {
    let args = match parse_run::<Args>(std::env::args_os(), |a| &mut a.config) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    if args.peak {
        let family = cpu_family().map_or("null".to_string(), |f| f.to_string());
        return match tensor::internals::fma_peak(args.threads as usize) {
            Some(g) => {
                println!(
                    "{{\"peak_gflops\": {g:.1}, \"threads\": {}, \"cpu_family\": {family}}}",
                    args.threads
                );
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("error: no x86-64 FMA on this machine to measure");
                ExitCode::FAILURE
            }
        };
    }
    if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(args.threads as usize).build_global() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let mnist = match Mnist::load(&args.data) {
        Ok(m) => m,
        Err(e) => {
            return e.report();
        }
    };
    let mut config = args.config.clone();
    config.model.fit_images(mnist.train.dim(), mnist.train.image_shape().0);
    let limit = MemoryLimit::current();
    let eval_k = args.eval_k.unwrap_or(0) as usize;
    if let Err(e) = config.validate().and_then(|_| config.check_memory(mnist.train.len(), eval_k, &limit)) {
        return e.report();
    }
    let mut trainer = Trainer::new(config.clone());
    if let Some(k) = args.eval_k {
        let images = args.warmup.saturating_add(args.steps) as usize;
        if let Err(e) = check_iwae_time(&trainer.model, &config, images, k as usize, "--eval-k") {
            return e.report();
        }
    }
    let mut times = Vec::new();
    let macs = if let Some(k) = args.eval_k {
        // The test set as `iwae_nll` evaluates it: binarized once when the recipe binarizes.
        let test = if config.binarize { mnist.test.binarized(TEST_BINARIZATION_SEED) } else { mnist.test };
        let mut rng = stream_rng(1, 1, Stream::Final);
        // On a rayon worker, as the evaluation runs.
        rayon::scope(|_| {
            for i in 0..(args.warmup + args.steps) as usize {
                let start = Instant::now();
                let x = test.intensities::<f32>(&[i % test.len()]);
                iwae_log_likelihood(&trainer.model, &x, k as usize, args.eval_rows as usize, &mut rng);
                if i as u64 >= args.warmup {
                    times.push(start.elapsed().as_secs_f64() * 1e3);
                }
            }
        });
        config.forward_macs(1, k as usize)
    } else {
        let train = mnist.train;
        let mut rng = stream_rng(1, 1, Stream::Train);
        let batches = train.batches(config.batch_size, Some(&mut rng));
        for (i, idx) in batches.iter().cycle().take((args.warmup + args.steps) as usize).enumerate() {
            let start = Instant::now();
            let x = train.batch::<f32, _>(idx, config.binarize.then_some(&mut rng));
            if let Err(e) = trainer.step(x, &mut rng) {
                return e.report();
            }
            if i as u64 >= args.warmup {
                times.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
        config.step_macs()
    };
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
