//! The variance of the encoder's gradient estimate against the number of samples L, for the
//! reparameterization trick, for the score-function (REINFORCE) estimator, and for the score
//! function with the baseline `log p(x | z = mu)`, on one MNIST image and a small VAE
//! (784-64-8 tanh, f64, freshly initialized). All three are unbiased (tests/elbo_gradients.rs
//! checks it); the picture shows how far apart their variances are. Prints a table and
//! writes `gradient_variance.png`.
//!
//! ```sh
//! cargo run --release --example gradient_variance
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use autograd::Graph;
use clap::Parser;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::Tensor;
use vae::config::{Activation, Estimator, VaeConfig};
use vae::data::Mnist;
use vae::elbo::{elbo_with_noise, sample_noise, ElboConfig};
use vae::io::MemoryLimit;
use vae::model::Vae;
use vae::plot::{write_lines, Series};

/// Measure the encoder-gradient variance of the reparameterization trick and the score-function estimators.
#[derive(Parser, Debug)]
struct Args {
    /// Directory of the MNIST IDX files.
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Independent estimates per point.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(2..))]
    repeats: u64,
    /// Largest L (powers of two up to it).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    max_samples: u64,
    /// Where to write gradient_variance.png.
    #[arg(long, default_value = "runs/gradient_variance")]
    out: PathBuf,
}

/// The encoder's gradient of the negative ELBO for one set of noise draws, flattened.
fn encoder_gradient(
    model: &Vae<f64>,
    x: &Tensor<f64>,
    noise: &[Tensor<f64>],
    estimator: Estimator,
) -> Vec<f64> {
    let g = Graph::new();
    let bound = model.bind(&g);
    let cfg = ElboConfig { samples: noise.len(), estimator, ..ElboConfig::default() };
    let grads = elbo_with_noise(&bound, g.constant(x.clone()), noise, &cfg).loss.backward();
    let names = model.params.names();
    let encoder = |n: &str| n.starts_with("encoder.") || n.starts_with("mu.") || n.starts_with("logvar.");
    bound
        .vars()
        .iter()
        .zip(names)
        .filter(|(_, n)| encoder(n))
        .flat_map(|(&v, _)| grads.get_or_zeros(v).to_vec())
        .collect()
}

/// The variance over `repeats` estimates, summed over the coordinates.
fn total_variance(estimates: &[Vec<f64>]) -> f64 {
    let n = estimates.len() as f64;
    (0..estimates[0].len())
        .map(|i| {
            let mean = estimates.iter().map(|e| e[i]).sum::<f64>() / n;
            estimates.iter().map(|e| (e[i] - mean).powi(2)).sum::<f64>() / (n - 1.0)
        })
        .sum()
}

fn main() -> ExitCode {
    let args = Args::parse();
    match measure(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

fn measure(args: &Args) -> vae::Result<()> {
    vae::io::prepare_out_dir(&args.out)?;
    let mnist = Mnist::load(&args.data)?;
    let x = mnist.test.intensities::<f64>(&[0]);
    let mut rng = StdRng::seed_from_u64(1);
    let config = VaeConfig {
        input: x.shape()[1],
        hidden: vec![64],
        latent: 8,
        activation: Activation::Tanh,
        ..VaeConfig::default()
    };
    // The estimates kept (three per repeat, each the encoder's gradient) and one estimate's
    // activations at the largest L (decoder output, hidden layers and latent draws per
    // sample, with gradients and temporaries), in f64.
    let encoder = (config.input * 64 + 64 + 2 * (64 * config.latent + config.latent)) as u128;
    let per_sample = (config.input + 2 * 64 + 4 * config.latent) as u128;
    let need =
        |repeats: u64, max_l: u64| 8 * (3 * repeats as u128 * encoder + 4 * max_l as u128 * per_sample);
    MemoryLimit::current().require(
        need(args.repeats, args.max_samples),
        &[
            ("--repeats", args.repeats.to_string(), need(2, args.max_samples)),
            ("--max-samples", args.max_samples.to_string(), need(args.repeats, 1)),
        ],
    )?;
    let model = Vae::<f64>::new(config, &mut rng);
    let mut ls = vec![1usize];
    while ls.last().unwrap() * 2 <= args.max_samples as usize {
        ls.push(ls.last().unwrap() * 2);
    }
    let mut rows = Vec::new();
    let estimators = [Estimator::Reparam, Estimator::Score, Estimator::ScoreBaseline];
    println!("L reparam_variance score_variance score_baseline_variance score/reparam baseline/reparam");
    for &l in &ls {
        let mut est = [Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..args.repeats {
            let noise = sample_noise::<f64, _>(l, 1, model.config.latent, &mut rng);
            for (e, &estimator) in est.iter_mut().zip(&estimators) {
                e.push(encoder_gradient(&model, &x, &noise, estimator));
            }
        }
        let [r, s, b] = est.map(|e| total_variance(&e));
        println!("{l} {r:.4e} {s:.4e} {b:.4e} {:.0} {:.0}", s / r, b / r);
        rows.push([l as f64, r, s, b]);
    }
    let line = |name: &str, color, column: usize| Series {
        name: name.into(),
        color,
        points: rows.iter().map(|row| (row[0].log2(), row[column].log10())).collect(),
    };
    let series = [
        line("reparameterization", (31, 119, 180), 1),
        line("score function", (214, 39, 40), 2),
        line("score function, baseline log p(x|mu)", (255, 127, 14), 3),
    ];
    let path = args.out.join("gradient_variance.png");
    write_lines(&path, "log10 variance of the encoder gradient", "log2 L (samples per estimate)", &series)?;
    println!("wrote {}", path.display());
    Ok(())
}
