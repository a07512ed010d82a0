//! The notes' information measures on a three-outcome example: the information of each
//! outcome, the entropy, `KL(p ‖ q)` and `KL(q ‖ p)` (not equal: KL is no distance), and the
//! closed-form KL of a diagonal Gaussian from N(0, I) beside a Monte Carlo estimate.
//!
//! ```sh
//! cargo run --release --example kl_divergence
//! cargo run --release --example kl_divergence -- --q 1,1,1 --mu 0,0,0
//! ```

use std::process::ExitCode;

use autograd::Graph;
use clap::Parser;
use lessons::info::{cross_entropy, entropy, kl_divergence};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::Tensor;
use vae::elbo::{kl_standard_normal, log_normal_diag};

/// Entropy and the KL divergence of two discrete distributions, and the KL of a diagonal
/// Gaussian from N(0, I) in closed form beside Monte Carlo.
#[derive(Parser, Debug)]
#[command(allow_negative_numbers = true)]
struct Args {
    /// The distribution p, as weights of the outcomes (scaled to sum to 1).
    #[arg(long, value_delimiter = ',', default_value = "0.3,0.5,0.2", value_parser = weight)]
    p: Vec<f64>,
    /// The distribution q, over as many outcomes as p (scaled to sum to 1).
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.2,0.7", value_parser = weight)]
    q: Vec<f64>,
    /// The Gaussian's mean, one value per dimension.
    #[arg(long, value_delimiter = ',', default_value = "0.3,-1.2,0.8", value_parser = finite)]
    mu: Vec<f64>,
    /// The Gaussian's log-variance, as many values as the mean.
    #[arg(long, value_delimiter = ',', default_value = "-0.5,0.4,0.0", value_parser = finite)]
    logvar: Vec<f64>,
}

fn weight(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a non-negative weight")),
    }
}

fn finite(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v.abs() <= 50.0 => Ok(v),
        _ => Err(format!("'{s}' is not a number in [-50, 50]")),
    }
}

/// `w` scaled to sum to 1, or why it cannot be.
fn normalized(name: &str, w: &[f64]) -> Result<Vec<f64>, String> {
    let total: f64 = w.iter().sum();
    if !(total > 0.0 && total.is_finite()) {
        return Err(format!("--{name} needs a positive weight"));
    }
    Ok(w.iter().map(|v| v / total).collect())
}

/// The two distributions, scaled to sum to 1, once the flags are checked to fit together.
fn distributions(args: &Args) -> Result<(Vec<f64>, Vec<f64>), String> {
    if args.p.len() != args.q.len() {
        return Err(format!("--p has {} outcomes and --q {}", args.p.len(), args.q.len()));
    }
    if args.mu.len() != args.logvar.len() {
        return Err(format!("--mu has {} dimensions and --logvar {}", args.mu.len(), args.logvar.len()));
    }
    Ok((normalized("p", &args.p)?, normalized("q", &args.q)?))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (p, q) = match distributions(&args) {
        Ok(pq) => pq,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match report(&p, &q, &args.mu, &args.logvar) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

fn report(p: &[f64], q: &[f64], mu: &[f64], logvar: &[f64]) -> vae::Result<()> {
    let n_outcomes = p.len();
    println!("p = {p:?}, q = {q:?}");
    let info: Vec<String> = p.iter().map(|v: &f64| format!("{:.4}", -v.ln())).collect();
    println!("information -log p(x) of each outcome: {}", info.join(", "));
    println!(
        "H(p) = {:.4}  H(q) = {:.4}  H(uniform) = ln {n_outcomes} = {:.4}",
        entropy(p),
        entropy(q),
        (n_outcomes as f64).ln()
    );
    println!("H(p, q) = {:.4}", cross_entropy(p, q)?);
    println!("KL(p || p) = {:.4}", kl_divergence(p, p)?);
    println!("KL(p || q) = {:.4}", kl_divergence(p, q)?);
    println!("KL(q || p) = {:.4}", kl_divergence(q, p)?);

    // KL(N(mu, diag sigma^2) || N(0, I)): closed form against the mean of log q - log p.
    let d = mu.len();
    let mu = Tensor::<f64>::from_vec(mu.to_vec(), &[1, d]);
    let logvar = Tensor::<f64>::from_vec(logvar.to_vec(), &[1, d]);
    let g = Graph::no_grad();
    let (m, lv) = (g.constant(mu.clone()), g.constant(logvar.clone()));
    let closed = kl_standard_normal(m, lv).value().item();
    let n = 200_000;
    let eps = Tensor::<f64>::randn(&[n, d], &mut StdRng::seed_from_u64(1));
    let z = &mu + &(&logvar.mul_scalar(0.5).exp() * &eps);
    let zv = g.constant(z);
    let log_q = log_normal_diag(zv, m, lv).value();
    let log_p =
        log_normal_diag(zv, g.constant(Tensor::zeros(&[1, d])), g.constant(Tensor::zeros(&[1, d]))).value();
    let diff = &log_q - &log_p;
    let mc = diff.mean().item();
    let se = (diff.add_scalar(-mc).square().mean().item() / n as f64).sqrt();
    println!(
        "Gaussian KL: closed form {closed:.4}, Monte Carlo over {n} draws {mc:.4} (standard error {se:.4})"
    );
    Ok(())
}
