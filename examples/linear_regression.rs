//! Linear regression as maximum likelihood: fits y = W x + b to generated data by gradient
//! descent through autograd, once on the mean squared error and once on the Gaussian negative
//! log-likelihood with a fixed σ, and prints both beside the closed-form least-squares fit.
//!
//! ```sh
//! cargo run --release --example linear_regression
//! ```

use lessons::linalg::least_squares;
use lessons::theory::{fit_linear_regression, RegressionLoss};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::Tensor;

fn main() -> std::process::ExitCode {
    match fit_and_print() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

fn fit_and_print() -> vae::Result<()> {
    let mut rng = StdRng::seed_from_u64(7);
    let (n, d_in, d_out, sigma) = (1000, 4, 2, 0.3);
    let w_true = Tensor::<f64>::from_vec(vec![1.5, -2.0, 0.5, 0.0, -0.7, 0.3, 2.2, 1.0], &[d_out, d_in]);
    let b_true = Tensor::from_vec(vec![0.5, -1.0], &[d_out]);
    let x = Tensor::<f64>::randn(&[n, d_in], &mut rng);
    let noise = Tensor::<f64>::randn(&[n, d_out], &mut rng).mul_scalar(sigma);
    let y = &(&x.matmul(&w_true.t()) + &b_true) + &noise;

    let (w_ls, b_ls) = least_squares(&x, &y)?;
    let (w_mse, b_mse, mse) = fit_linear_regression(&x, &y, RegressionLoss::Mse, 500, 0.1)?;
    // The NLL's gradient is the MSE's times out/(2σ²): the same steps need a smaller rate.
    let lr_nll = 0.1 * 2.0 * sigma * sigma / d_out as f64;
    let (w_nll, b_nll, nll) =
        fit_linear_regression(&x, &y, RegressionLoss::GaussianNll { sigma }, 500, lr_nll)?;

    println!("{n} points, {d_in} inputs, {d_out} outputs, noise σ = {sigma}");
    println!(
        "{:>10} {:>10} {:>12} {:>12} {:>12}",
        "parameter", "true", "least sq.", "GD on MSE", "GD on NLL"
    );
    let names = (0..d_out)
        .flat_map(|o| (0..d_in).map(move |i| format!("W[{o},{i}]")))
        .chain((0..d_out).map(|o| format!("b[{o}]")));
    let cols = [&w_true, &w_ls, &w_mse, &w_nll].map(|w| w.to_vec());
    let bcols = [&b_true, &b_ls, &b_mse, &b_nll].map(|b| b.to_vec());
    for (k, name) in names.enumerate() {
        let v = |c: usize| if k < d_out * d_in { cols[c][k] } else { bcols[c][k - d_out * d_in] };
        println!("{name:>10} {:>10.4} {:>12.6} {:>12.6} {:>12.6}", v(0), v(1), v(2), v(3));
    }
    let gap = |a: &Tensor<f64>, b: &Tensor<f64>| (a - b).abs().max().item();
    println!("final MSE {mse:.6} (≈ σ² = {:.4}), final NLL per point {nll:.6}", sigma * sigma);
    println!(
        "largest gap to least squares: GD on MSE {:.2e}, GD on NLL {:.2e}",
        gap(&w_mse, &w_ls).max(gap(&b_mse, &b_ls)),
        gap(&w_nll, &w_ls).max(gap(&b_nll, &b_ls))
    );
    Ok(())
}
