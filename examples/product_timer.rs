//! Times the matrix products of the default and Burda et al.'s layers one at a time, as
//! `Tensor::matmul` runs them (the layer's `Wᵀ` a transposed view, a weight gradient's `Gᵀ` a
//! transposed view): for each shape, calls back to back for `--millis` ms, and one JSON line
//! with the fastest call and the median call in µs. `bench/alternate.py --products` runs two
//! builds' timers in turn.
//!
//! The fastest call is what a product costs when nothing else on the host gets in its way,
//! the number to compare between builds on a host whose speed drifts.
//!
//! ```sh
//! cargo run --release --example product_timer -- --threads 1
//! cargo run --release --example product_timer -- --threads 2 --only burda_
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::Tensor;

/// Time the layers' matrix products.
#[derive(Parser, Debug)]
struct Args {
    /// Worker threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    threads: u64,
    /// Milliseconds of calls per product.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    millis: u64,
    /// Only the products whose name contains this.
    #[arg(long, default_value = "")]
    only: String,
}

/// How a product's operand is stored.
#[derive(Clone, Copy)]
enum Side {
    /// Contiguous rows.
    Rows,
    /// A transposed view of contiguous rows (a layer's `Wᵀ`, a gradient's `Gᵀ`).
    Transposed,
}
use Side::{Rows, Transposed};

/// Name, `m`, `k`, `n` and how each operand is stored: the shapes of the forward `x·Wᵀ`,
/// the input gradient `G·W` and the weight gradient `Gᵀ·X` of the default model's first and
/// last layers at batch 128 and of Burda et al.'s at batch 20 (and of the last layer at the
/// 100 rows of an importance-weighted decoder with k = 5), as `benches/matmul.rs` names
/// them. (A step skips the first layer's input gradient; its shape is timed all the same.)
const PRODUCTS: &[(&str, usize, usize, usize, Side, Side)] = &[
    ("fwd_128x784x400", 128, 784, 400, Rows, Transposed),
    ("fwd_128x400x784", 128, 400, 784, Rows, Transposed),
    ("igrad_128x400x784", 128, 400, 784, Rows, Rows),
    ("igrad_128x784x400", 128, 784, 400, Rows, Rows),
    ("wgrad_400x128x784", 400, 128, 784, Transposed, Rows),
    ("wgrad_784x128x400", 784, 128, 400, Transposed, Rows),
    ("burda_fwd_20x784x200", 20, 784, 200, Rows, Transposed),
    ("burda_fwd_20x200x784", 20, 200, 784, Rows, Transposed),
    ("burda_igrad_20x784x200", 20, 784, 200, Rows, Rows),
    ("burda_igrad_20x200x784", 20, 200, 784, Rows, Rows),
    ("burda_wgrad_200x20x784", 200, 20, 784, Transposed, Rows),
    ("burda_wgrad_784x20x200", 784, 20, 200, Transposed, Rows),
    ("burda_fwd_100x200x784", 100, 200, 784, Rows, Transposed),
    ("burda_igrad_100x784x200", 100, 784, 200, Rows, Rows),
    ("burda_wgrad_784x100x200", 784, 100, 200, Transposed, Rows),
];

/// A `rows×cols` operand of standard normal draws, stored as `side` says.
fn operand(rows: usize, cols: usize, side: Side, rng: &mut StdRng) -> Tensor<f32> {
    match side {
        Rows => Tensor::randn(&[rows, cols], rng),
        Transposed => Tensor::randn(&[cols, rows], rng).t(),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(args.threads as usize).build() {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("error: cannot start {} threads: {e}", args.threads);
            return ExitCode::FAILURE;
        }
    };
    let mut rng = StdRng::seed_from_u64(0);
    let chosen: Vec<_> = PRODUCTS.iter().filter(|p| p.0.contains(&args.only)).collect();
    if chosen.is_empty() {
        eprintln!("error: no product's name contains '{}'", args.only);
        return ExitCode::FAILURE;
    }
    // On a rayon worker with the others awake, as a training step runs its products.
    pool.install(|| {
        tensor::with_workers_awake(|| {
            for &&(name, m, k, n, sa, sb) in &chosen {
                let (a, b) = (operand(m, k, sa, &mut rng), operand(k, n, sb, &mut rng));
                std::hint::black_box(a.matmul(&b));
                let mut us = Vec::new();
                let end = Instant::now() + Duration::from_millis(args.millis);
                while us.is_empty() || Instant::now() < end {
                    let start = Instant::now();
                    std::hint::black_box(a.matmul(&b));
                    us.push(start.elapsed().as_secs_f64() * 1e6);
                }
                us.sort_by(f64::total_cmp);
                let gflops = 2.0 * (m * k * n) as f64 / us[0] / 1e3;
                println!(
                    "{{\"product\": \"{name}\", \"threads\": {}, \"fastest_us\": {:.1}, \"median_us\": {:.1}, \"gflops_fastest\": {gflops:.1}}}",
                    args.threads,
                    us[0],
                    us[us.len() / 2]
                );
            }
        })
    });
    ExitCode::SUCCESS
}
