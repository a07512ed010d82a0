//! Linear regression as maximum likelihood: fits y = W x + b to generated data by gradient
//! descent through autograd, with one learning rate, on the mean squared error, on the
//! Gaussian negative log-likelihood with two fixed σ, and on the Gaussian negative
//! log-likelihood with σ learned beside W and b; prints each fit beside the closed-form
//! least-squares fit, and the learned σ² beside the least-squares fit's mean squared residual.
//!
//! ```sh
//! cargo run --release --example linear_regression
//! cargo run --release --example linear_regression -- --steps 100 --sigma 0.5,2
//! ```

use clap::Parser;
use lessons::linalg::least_squares;
use lessons::theory::{fit_linear_regression, RegressionLoss};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::Tensor;

/// Linear regression by gradient descent on the squared error and on the Gaussian negative
/// log-likelihood, against least squares.
#[derive(Parser, Debug)]
struct Args {
    /// Gradient-descent steps of every fit.
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    steps: u64,
    /// Learning rate of every fit.
    #[arg(long, default_value_t = 0.05, value_parser = positive)]
    lr: f64,
    /// The fixed σ of the negative log-likelihood fits, one fit each.
    #[arg(long, value_delimiter = ',', default_value = "0.5,2", value_parser = positive)]
    sigma: Vec<f64>,
}

fn positive(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a positive number")),
    }
}

fn main() -> std::process::ExitCode {
    match fit_and_print(&Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

fn fit_and_print(args: &Args) -> vae::Result<()> {
    let (steps, lr) = (args.steps as usize, args.lr);
    let mut rng = StdRng::seed_from_u64(7);
    let (n, d_in, d_out) = (1000, 4, 2);
    // A different noise level per output, so a learned σ has two different values to find.
    let noise_sd = Tensor::from_vec(vec![0.3, 0.8], &[d_out]);
    let w_true = Tensor::<f64>::from_vec(vec![1.5, -2.0, 0.5, 0.0, -0.7, 0.3, 2.2, 1.0], &[d_out, d_in]);
    let b_true = Tensor::from_vec(vec![0.5, -1.0], &[d_out]);
    let x = Tensor::<f64>::randn(&[n, d_in], &mut rng);
    let noise = &Tensor::<f64>::randn(&[n, d_out], &mut rng) * &noise_sd;
    let y = &(&x.matmul(&w_true.t()) + &b_true) + &noise;

    let (w_ls, b_ls) = least_squares(&x, &y)?;
    // The least-squares fit's mean squared residual per output: the maximum-likelihood σ².
    let residual = &y - &(&x.matmul(&w_ls.t()) + &b_ls);
    let ms_residual = residual.square().sum_axis(0, false).mul_scalar(1.0 / n as f64);

    println!("{n} points, {d_in} inputs, {d_out} outputs, noise σ = {:?}", noise_sd.to_vec());
    println!("gradient descent: {steps} steps at learning rate {lr}, momentum 0.9, for every loss");
    let gap = |a: &Tensor<f64>, b: &Tensor<f64>| (a - b).abs().max().item();
    let fixed =
        args.sigma.iter().map(|&sigma| (format!("NLL, σ = {sigma}"), RegressionLoss::GaussianNll { sigma }));
    let losses = std::iter::once(("MSE".to_string(), RegressionLoss::Mse))
        .chain(fixed)
        .chain(std::iter::once(("NLL, σ learned".to_string(), RegressionLoss::GaussianNllLearnedSigma)));
    for (name, loss) in losses {
        let fit = fit_linear_regression(&x, &y, loss, steps, lr)?;
        let far = gap(&fit.weight, &w_ls).max(gap(&fit.bias, &b_ls));
        println!("{name:>15}: largest gap to least squares {far:.2e}, final loss {:.6}", fit.loss);
        if let Some(sigma) = fit.sigma {
            let sq = sigma.square().to_vec();
            let ms = ms_residual.to_vec();
            let worst = sq.iter().zip(&ms).map(|(s, m)| (s / m - 1.0).abs()).fold(0.0, f64::max);
            println!(
                "{:>15}  learned σ² {:.6?}, least squares' mean squared residual {:.6?}: relative gap {worst:.2e}",
                "",
                sq,
                ms
            );
        }
    }
    Ok(())
}
