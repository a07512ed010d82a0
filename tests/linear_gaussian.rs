//! A linear-Gaussian latent model, where everything is exact: `p(z) = N(0, I)`,
//! `p(x|z) = N(Wz + b, I)`, so `p(x) = N(b, WWᵀ + I)` and `p(z|x) = N(S Wᵀ(x − b), S)` with
//! `S = (I + WᵀW)⁻¹`. It is a VAE of this project with no hidden layers and a unit-variance
//! Gaussian decoder. Checked here, against closed forms computed independently of the engine:
//! `log p(x) − ELBO = KL(q(z|x) ‖ p(z|x))` for an arbitrary encoder; with the encoder set to
//! the true posterior every importance weight equals `p(x)` exactly; and the engine's
//! k = 5000 importance-weighted bound is within 0.02 nats of `log p(x)`.

use autograd::Graph;
use lessons::linalg::{solve_spd, symmetric_eigenvalues};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::Tensor;
use vae::config::{Likelihood, Objective, VaeConfig};
use vae::elbo::{log_weight_bound, log_weights, LN_2PI};
use vae::model::Vae;

const D: usize = 5;
const Z: usize = 2;

fn model(seed: u64) -> Vae<f64> {
    let config = VaeConfig {
        input: D,
        hidden: vec![],
        latent: Z,
        likelihood: Likelihood::Gaussian,
        ..VaeConfig::default()
    };
    Vae::new(config, &mut StdRng::seed_from_u64(seed))
}

fn set(vae: &mut Vae<f64>, name: &str, values: Vec<f64>) {
    let i = vae.params.names().iter().position(|n| n == name).unwrap();
    let t = &mut vae.params.tensors_mut()[i];
    *t = Tensor::from_vec(values, t.shape());
}

fn get(vae: &Vae<f64>, name: &str) -> Vec<f64> {
    vae.params.get(name).unwrap().to_vec()
}

/// `[r, c]` row-major matrix product.
fn mm(a: &[f64], b: &[f64], r: usize, k: usize, c: usize) -> Vec<f64> {
    (0..r).flat_map(|i| (0..c).map(move |j| (0..k).map(|p| a[i * k + p] * b[p * c + j]).sum())).collect()
}

fn transpose(a: &[f64], r: usize, c: usize) -> Vec<f64> {
    (0..c).flat_map(|j| (0..r).map(move |i| a[i * c + j])).collect()
}

fn eye(n: usize) -> Vec<f64> {
    (0..n * n).map(|i| if i % (n + 1) == 0 { 1.0 } else { 0.0 }).collect()
}

fn inverse(a: &[f64], n: usize) -> Vec<f64> {
    solve_spd(&Tensor::from_vec(a.to_vec(), &[n, n]), &Tensor::from_vec(eye(n), &[n, n])).unwrap().to_vec()
}

fn log_det(a: &[f64], n: usize) -> f64 {
    symmetric_eigenvalues(&Tensor::from_vec(a.to_vec(), &[n, n])).iter().map(|v| v.ln()).sum()
}

/// Exact `log p(x)`, `ELBO(q)` and `KL(q ‖ p(z|x))` for one image `x`, computed from the
/// model's weights with plain loops.
fn exact(vae: &Vae<f64>, x: &[f64]) -> (f64, f64, f64) {
    let (w, b) = (get(vae, "out.weight"), get(vae, "out.bias")); // W [D, Z]
    let (a, c) = (get(vae, "mu.weight"), get(vae, "mu.bias")); // [Z, D]
    let (l, lb) = (get(vae, "logvar.weight"), get(vae, "logvar.bias"));
    let xb: Vec<f64> = x.iter().zip(&b).map(|(x, b)| x - b).collect();
    // log p(x) = −½[(x−b)ᵀ C⁻¹ (x−b) + ln det C + D ln 2π], C = WWᵀ + I.
    let cov: Vec<f64> =
        mm(&w, &transpose(&w, D, Z), D, Z, D).iter().zip(eye(D)).map(|(a, e)| a + e).collect();
    let quad: f64 = mm(&inverse(&cov, D), &xb, D, D, 1).iter().zip(&xb).map(|(a, b)| a * b).sum();
    let log_px = -0.5 * (quad + log_det(&cov, D) + D as f64 * LN_2PI);
    // q = N(μ, diag σ²) from the encoder.
    let mu: Vec<f64> = (0..Z).map(|i| (0..D).map(|j| a[i * D + j] * x[j]).sum::<f64>() + c[i]).collect();
    let var: Vec<f64> =
        (0..Z).map(|i| ((0..D).map(|j| l[i * D + j] * x[j]).sum::<f64>() + lb[i]).exp()).collect();
    // ELBO = E_q log p(x|z) − KL(q ‖ N(0, I)).
    let wmu = mm(&w, &mu, D, Z, 1);
    let resid: f64 = (0..D).map(|i| (xb[i] - wmu[i]).powi(2)).sum();
    let trace: f64 = (0..D).map(|i| (0..Z).map(|k| w[i * Z + k].powi(2) * var[k]).sum::<f64>()).sum();
    let recon = -0.5 * (resid + trace) - 0.5 * D as f64 * LN_2PI;
    let kl_prior: f64 = (0..Z).map(|k| 0.5 * (var[k] + mu[k] * mu[k] - 1.0 - var[k].ln())).sum();
    let elbo = recon - kl_prior;
    // p(z|x) = N(m, S), S = (I + WᵀW)⁻¹, m = S Wᵀ (x − b).
    let prec: Vec<f64> =
        mm(&transpose(&w, D, Z), &w, Z, D, Z).iter().zip(eye(Z)).map(|(a, e)| a + e).collect();
    let s = inverse(&prec, Z);
    let m = mm(&mm(&s, &transpose(&w, D, Z), Z, Z, D), &xb, Z, D, 1);
    let dm: Vec<f64> = m.iter().zip(&mu).map(|(m, u)| m - u).collect();
    let kl_post = 0.5
        * ((0..Z).map(|k| prec[k * Z + k] * var[k]).sum::<f64>()
            + mm(&prec, &dm, Z, Z, 1).iter().zip(&dm).map(|(a, b)| a * b).sum::<f64>()
            - Z as f64
            - log_det(&prec, Z)
            - var.iter().map(|v| v.ln()).sum::<f64>());
    (log_px, elbo, kl_post)
}

fn images(n: usize) -> Tensor<f64> {
    Tensor::randn(&[n, D], &mut StdRng::seed_from_u64(21))
}

#[test]
fn the_elbo_gap_is_the_kl_to_the_true_posterior() {
    let vae = model(1);
    let x = images(4);
    for r in 0..4 {
        let row = x.narrow(0, r, 1).to_vec();
        let (log_px, elbo, kl) = exact(&vae, &row);
        println!(
            "image {r}: log p(x) {log_px:.6}, ELBO {elbo:.6}, gap {:.6}, KL(q || p(z|x)) {kl:.6}",
            log_px - elbo
        );
        assert!(kl > 0.0 && elbo < log_px);
        assert!((log_px - elbo - kl).abs() < 1e-10, "log p(x) {log_px}, ELBO {elbo}, KL {kl}");
    }
}

/// With q(z|x) = p(z|x) (possible here because W has orthogonal columns, so the posterior
/// covariance is diagonal), `log w = log p(x)` for every draw: the engine's log weights
/// must all equal the exact value.
#[test]
fn at_the_true_posterior_every_weight_is_p_of_x() {
    let mut vae = model(2);
    let w = vec![1.0, 0.0, 0.0, 2.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0]; // [D, Z], WᵀW = diag(2, 5)
    let b = vec![0.1, -0.2, 0.3, 0.0, 0.5];
    set(&mut vae, "out.weight", w.clone());
    set(&mut vae, "out.bias", b.clone());
    let s = [1.0 / 3.0, 1.0 / 6.0];
    // S Wᵀ, [Z, D].
    let swt: Vec<f64> =
        (0..Z).flat_map(|k| (0..D).map(|j| s[k] * w[j * Z + k]).collect::<Vec<_>>()).collect();
    let bias: Vec<f64> = (0..Z).map(|k| -(0..D).map(|j| swt[k * D + j] * b[j]).sum::<f64>()).collect();
    set(&mut vae, "mu.weight", swt);
    set(&mut vae, "mu.bias", bias);
    set(&mut vae, "logvar.weight", vec![0.0; Z * D]);
    set(&mut vae, "logvar.bias", s.iter().map(|v: &f64| v.ln()).collect());
    let x = images(3);
    let g = Graph::no_grad();
    let eps = Tensor::<f64>::randn(&[7, 3, Z], &mut StdRng::seed_from_u64(4));
    let (log_w, _) = log_weights(&vae.bind(&g), g.constant(x.clone()), &eps);
    let log_w = log_w.value();
    for r in 0..3 {
        let (log_px, elbo, kl) = exact(&vae, &x.narrow(0, r, 1).to_vec());
        assert!(kl.abs() < 1e-12 && (elbo - log_px).abs() < 1e-10, "q is the posterior: KL {kl}");
        for k in 0..7 {
            let v = log_w.get(&[k, r]).unwrap();
            assert!((v - log_px).abs() < 1e-10, "log w {v} vs log p(x) {log_px}");
        }
    }
}

/// For an arbitrary encoder, the engine's k = 5000 bound is within 0.02 nats of the exact
/// log-likelihood (the gap of the bound shrinks like 1/k), and the k = 1 bound, averaged,
/// is the ELBO.
#[test]
fn the_k_5000_bound_reaches_the_exact_log_likelihood() {
    let vae = model(3);
    let x = images(4);
    let g = Graph::no_grad();
    let bound = |k: usize, seed: u64, objective: Objective| {
        let eps = Tensor::<f64>::randn(&[k, 4, Z], &mut StdRng::seed_from_u64(seed));
        -log_weight_bound(&vae.bind(&g), g.constant(x.clone()), &eps, objective).loss.value().item() / 4.0
    };
    let (mut log_px, mut elbo) = (0.0, 0.0);
    for r in 0..4 {
        let (p, e, _) = exact(&vae, &x.narrow(0, r, 1).to_vec());
        log_px += p / 4.0;
        elbo += e / 4.0;
    }
    let iwae = bound(5000, 7, Objective::Iwae);
    assert!(iwae <= log_px + 1e-3 && log_px - iwae < 0.02, "k = 5000: {iwae}, exact {log_px}");
    let mc = bound(20000, 8, Objective::ElboMc);
    assert!((mc - elbo).abs() < 0.05, "Monte Carlo ELBO {mc}, exact {elbo}");
    assert!(log_px - elbo > 0.1, "the encoder is not the posterior, so the ELBO is loose");
}

/// EM never lowers `log p(x)`: its E-step closes the gap (`q = p(z|x)`), so the M-step's
/// gain in the ELBO is a gain in the likelihood. Joint gradient ascent on the ELBO has no
/// such guarantee. At the maximum-likelihood decoder (probabilistic PCA's closed form, from
/// the data's covariance) with an encoder that is not the posterior, one step raises the
/// exact ELBO and lowers the exact `log p(x)`: the decoder gives up likelihood to make the
/// posterior easier for the encoder to match.
#[test]
fn joint_ascent_can_lower_the_likelihood_which_em_never_lowers() {
    use lessons::linalg::top_eigenvectors;
    use vae::config::{OptimizerConfig, OptimizerKind};
    use vae::elbo::{elbo_with_noise, sample_noise, ElboConfig};
    use vae::optim::Optimizer;
    use vae::train::train_step;

    // Data from the model itself: W0 with columns of length 3 and 2, b0, unit noise.
    let mut rng = StdRng::seed_from_u64(33);
    let n = 500;
    let w0 = Tensor::<f64>::from_vec(vec![3.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], &[D, Z]);
    let b0 = Tensor::from_vec(vec![1.0, -1.0, 0.5, 0.0, 2.0], &[D]);
    let z = Tensor::<f64>::randn(&[n, Z], &mut rng);
    let x = &(&z.matmul(&w0.t()) + &b0) + &Tensor::<f64>::randn(&[n, D], &mut rng);
    // Maximum likelihood with unit noise: b = the mean, W = U (Λ − I)^½ from the top Z
    // eigenpairs of the covariance (divided by n).
    let mean = x.mean_axis(0, false);
    let xc = &x - &mean;
    let cov = xc.t().matmul(&xc).mul_scalar(1.0 / n as f64);
    let u = top_eigenvectors(&cov, Z, 500, 1);
    let lambda = u.t().matmul(&cov).matmul(&u).to_vec();
    let scale = Tensor::from_vec((0..Z).map(|k| (lambda[k * Z + k] - 1.0).sqrt()).collect(), &[Z]);
    let mut vae = model(2);
    set(&mut vae, "out.weight", (&u * &scale).to_vec());
    set(&mut vae, "out.bias", mean.to_vec());
    let averages = |vae: &Vae<f64>| {
        let rows: Vec<(f64, f64, f64)> = (0..n).map(|r| exact(vae, &x.narrow(0, r, 1).to_vec())).collect();
        let avg = |f: fn(&(f64, f64, f64)) -> f64| rows.iter().map(f).sum::<f64>() / n as f64;
        (avg(|r| r.0), avg(|r| r.1))
    };
    let (log_px0, elbo0) = averages(&vae);

    let sgd = OptimizerConfig {
        kind: OptimizerKind::Sgd { momentum: 0.0 },
        lr: 1e-5,
        ..OptimizerConfig::default()
    };
    let mut opt = Optimizer::new(sgd, &vae.params);
    let noise = sample_noise::<f64, _>(256, n, Z, &mut rng);
    let mut graph = Graph::new();
    train_step(&mut graph, &mut vae, &mut opt, |g, m, vars| {
        let bound = m.attach(vars).unwrap();
        let terms = elbo_with_noise(&bound, g.constant(x.clone()), &noise, &ElboConfig::default());
        let value = terms.loss.value().item();
        (terms.loss, value)
    })
    .unwrap();
    let (log_px1, elbo1) = averages(&vae);
    println!("log p(x) {log_px0:.6} -> {log_px1:.6}, ELBO {elbo0:.6} -> {elbo1:.6}");
    assert!(elbo1 > elbo0, "the step lowered the ELBO: {elbo0} -> {elbo1}");
    assert!(log_px1 < log_px0 - 1e-9, "log p(x) did not fall: {log_px0} -> {log_px1}");
}
