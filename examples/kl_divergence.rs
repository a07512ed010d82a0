//! The notes' information measures on a three-outcome example: the information of each
//! outcome, the entropy, `KL(p ‖ q)` and `KL(q ‖ p)` (not equal: KL is no distance), and the
//! closed-form KL of a diagonal Gaussian from N(0, I) beside a Monte Carlo estimate.
//!
//! ```sh
//! cargo run --release --example kl_divergence
//! ```

use autograd::Graph;
use lessons::info::{cross_entropy, entropy, kl_divergence};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::Tensor;
use vae::elbo::{kl_standard_normal, log_normal_diag};

fn main() -> vae::Result<()> {
    let p = [0.3, 0.5, 0.2];
    let q = [0.1, 0.2, 0.7];
    println!("p = {p:?}, q = {q:?}");
    let info: Vec<String> = p.iter().map(|v: &f64| format!("{:.4}", -v.ln())).collect();
    println!("information -log p(x) of each outcome: {}", info.join(", "));
    println!("H(p) = {:.4}  H(q) = {:.4}  H(uniform) = ln 3 = {:.4}", entropy(&p), entropy(&q), 3f64.ln());
    println!("H(p, q) = {:.4}", cross_entropy(&p, &q)?);
    println!("KL(p || p) = {:.4}", kl_divergence(&p, &p)?);
    println!("KL(p || q) = {:.4}", kl_divergence(&p, &q)?);
    println!("KL(q || p) = {:.4}", kl_divergence(&q, &p)?);

    // KL(N(mu, diag sigma^2) || N(0, I)): closed form against the mean of log q - log p.
    let mu = Tensor::<f64>::from_vec(vec![0.3, -1.2, 0.8], &[1, 3]);
    let logvar = Tensor::<f64>::from_vec(vec![-0.5, 0.4, 0.0], &[1, 3]);
    let g = Graph::no_grad();
    let (m, lv) = (g.constant(mu.clone()), g.constant(logvar.clone()));
    let closed = kl_standard_normal(m, lv).value().item();
    let n = 200_000;
    let eps = Tensor::<f64>::randn(&[n, 3], &mut StdRng::seed_from_u64(1));
    let z = &mu + &(&logvar.mul_scalar(0.5).exp() * &eps);
    let zv = g.constant(z);
    let log_q = log_normal_diag(zv, m, lv).value();
    let log_p =
        log_normal_diag(zv, g.constant(Tensor::zeros(&[1, 3])), g.constant(Tensor::zeros(&[1, 3]))).value();
    let diff = &log_q - &log_p;
    let mc = diff.mean().item();
    let se = (diff.add_scalar(-mc).square().mean().item() / n as f64).sqrt();
    println!(
        "Gaussian KL: closed form {closed:.4}, Monte Carlo over {n} draws {mc:.4} (standard error {se:.4})"
    );
    Ok(())
}
