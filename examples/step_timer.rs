//! Times the VAE training step (forward, backward, Adam) on MNIST batches, for
//! `bench/compare_pytorch.py`. Prints one JSON line: the median and mean milliseconds, the
//! GFLOP/s of the step's matrix products at the median, and the host's CPU family.
//! With `--eval-k K` it times instead the importance-weighted evaluation of one test image
//! after another (`K` draws each, the k = 5000 test NLL's unit of work); with
//! `--peak`, the f32 FMA peak this machine gives, against which to read the GFLOP/s; with
//! `--floor`, the step's floor (its products at that peak plus Adam's bytes at the rate the
//! host streams them).
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
//! cargo run --release --example step_timer -- --preset burda --floor --threads 1
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
    /// Print instead the step's floor on `--threads` threads: its matrix products at the
    /// host's FMA peak plus Adam's bytes (28 per parameter) at the rate this host streams
    /// them for this model's parameter count (`tensor::internals::adam_bandwidth`).
    #[arg(long, conflicts_with_all = ["peak", "eval_k"])]
    floor: bool,
    /// Most decoder rows live at once in the evaluation.
    #[arg(long, default_value_t = IWAE_ROWS as u64, value_parser = clap::value_parser!(u64).range(1..))]
    eval_rows: u64,
    /// The widest instruction set the elementwise loops and the product kernels of our own
    /// may use (the widest this CPU has by default); the results are the same bits on each.
    #[arg(long, value_enum)]
    vector_path: Option<VectorPath>,
    #[command(flatten)]
    config: TrainConfig,
}

/// `--vector-path`'s values.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum VectorPath {
    /// The target's baseline (SSE2 on x86-64).
    Portable,
    /// AVX2 and FMA.
    Avx2,
    /// AVX-512F.
    Avx512,
}

/// Caps the paths `tensor` chooses from at `widest`, or says why it cannot.
fn limit_vector_path(widest: VectorPath) -> Result<(), String> {
    use tensor::internals::Path;
    let path = match widest {
        VectorPath::Portable => Path::Portable,
        #[cfg(target_arch = "x86_64")]
        VectorPath::Avx2 => Path::Avx2,
        #[cfg(target_arch = "x86_64")]
        VectorPath::Avx512 => Path::Avx512,
        #[cfg(not(target_arch = "x86_64"))]
        other => return Err(format!("--vector-path {other:?} needs an x86-64 CPU")),
    };
    if !Path::available().contains(&path) {
        return Err(format!("--vector-path: this CPU does not run {path:?}"));
    }
    tensor::internals::limit_path(Some(path));
    Ok(())
}

/// Prints the floor of the configured step (see `--floor`) as one JSON line.
fn print_floor(config: &TrainConfig, threads: usize) -> ExitCode {
    let Some(peak) = tensor::internals::fma_peak(threads) else {
        eprintln!("error: no x86-64 FMA on this machine to measure");
        return ExitCode::FAILURE;
    };
    let parameters = usize::try_from(config.parameters()).unwrap_or(usize::MAX);
    let bandwidth = tensor::internals::adam_bandwidth(parameters, threads);
    let flops = 2.0 * config.step_macs() as f64;
    let adam_bytes = 28.0 * parameters as f64;
    let (products_ms, adam_ms) = (flops / peak / 1e6, adam_bytes / bandwidth / 1e6);
    println!(
        "{{\"floor_ms\": {:.4}, \"products_ms\": {products_ms:.4}, \"adam_ms\": {adam_ms:.4}, \"step_mflop\": {:.1}, \"peak_gflops\": {peak:.1}, \"parameters\": {parameters}, \"adam_gbs\": {bandwidth:.1}, \"threads\": {threads}, \"cpu_family\": {}}}",
        products_ms + adam_ms,
        flops / 1e6,
        cpu_family().map_or("null".to_string(), |f| f.to_string())
    );
    ExitCode::SUCCESS
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
    if let Err(e) = args.vector_path.map_or(Ok(()), limit_vector_path) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
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
    if args.floor {
        return print_floor(&config, args.threads as usize);
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
        // On a rayon worker with the others awake, as the evaluation runs.
        tensor::with_workers_awake(|| {
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
        "{{\"median_ms\": {median:.4}, \"mean_ms\": {mean:.4}, \"threads\": {}, \"gflops\": {:.1}, \"cpu_family\": {}, \"vector_path\": \"{:?}\"}}",
        args.threads,
        2.0 * macs as f64 / (median * 1e-3) / 1e9,
        cpu_family().map_or("null".to_string(), |f| f.to_string()),
        tensor::internals::Path::detect()
    );
    ExitCode::SUCCESS
}
