//! The log-weight objectives (the Monte Carlo ELBO as a mean of `log w`, and the
//! importance-weighted bound): gradient checks in f64, the IWAE bound at k = 1 against the
//! Monte Carlo ELBO on the same draw, and the bound not decreasing with k; the same for a
//! model with two stochastic layers, whose log weight is also checked term by term.

use autograd::{gradcheck, GradcheckConfig, Graph};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::Tensor;
use vae::config::{Activation, Likelihood, Objective, SigmaHead, StochasticLayer, VaeConfig};
use vae::elbo::{elbo_with_noise, log_weight_bound, log_weights, ElboConfig, LN_2PI};
use vae::model::Vae;

fn model(likelihood: Likelihood, hidden: Vec<usize>, seed: u64) -> (Vae<f64>, Tensor<f64>) {
    model_with(likelihood, SigmaHead::Logvar, hidden, seed)
}

fn model_with(
    likelihood: Likelihood,
    sigma: SigmaHead,
    hidden: Vec<usize>,
    seed: u64,
) -> (Vae<f64>, Tensor<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let config = VaeConfig {
        input: 6,
        hidden,
        latent: 3,
        activation: Activation::Tanh,
        likelihood,
        sigma,
        ..VaeConfig::default()
    };
    let vae = Vae::<f64>::new(config, &mut rng);
    let x = Tensor::rand_uniform(&[4, 6], 0.0, 1.0, &mut rng);
    (vae, x)
}

/// The negative bound (per batch) for noise `eps`, without a tape to keep.
fn neg_bound(vae: &Vae<f64>, x: &Tensor<f64>, eps: &Tensor<f64>, objective: Objective) -> f64 {
    let g = Graph::no_grad();
    log_weight_bound(&vae.bind(&g), g.constant(x.clone()), eps, objective).loss.value().item()
}

/// The negative IWAE bound with `k` samples, averaged over `draws` fresh draws of noise for
/// every stochastic layer.
fn mean_neg_bound(vae: &Vae<f64>, x: &Tensor<f64>, k: usize, draws: usize, rng: &mut StdRng) -> f64 {
    let units: usize = vae.latent_sizes().iter().sum();
    let batch = x.shape()[0];
    (0..draws)
        .map(|_| neg_bound(vae, x, &Tensor::randn(&[k, batch, units], rng), Objective::Iwae))
        .sum::<f64>()
        / draws as f64
}

#[test]
fn both_objectives_match_finite_differences() {
    for objective in [Objective::ElboMc, Objective::Iwae] {
        for (likelihood, sigma) in [
            (Likelihood::Bernoulli, SigmaHead::Logvar),
            (Likelihood::GaussianLearned, SigmaHead::Logvar),
            (Likelihood::Bernoulli, SigmaHead::LogSigma),
        ] {
            let (vae, x) = model_with(likelihood, sigma, vec![5, 4], 2);
            let eps = Tensor::<f64>::randn(&[3, 4, 3], &mut StdRng::seed_from_u64(5));
            let report = gradcheck(
                |g, v| log_weight_bound(&vae.attach(v).unwrap(), g.constant(x.clone()), &eps, objective).loss,
                vae.params.tensors(),
                &GradcheckConfig::default(),
            );
            assert!(
                report.passed && report.max_rel_error <= 1e-6,
                "{objective} {likelihood} {sigma}: {report}"
            );
            assert_eq!(report.checked, vae.params.numel());
        }
    }
}

/// With one sample, `log mean w = mean log w = log w`, and the Monte Carlo ELBO with the KL
/// in closed form differs from it only by the KL's estimate; with the same draw the two
/// log-weight forms agree exactly, and the closed-form ELBO agrees in expectation.
#[test]
fn at_k_1_the_bound_is_the_monte_carlo_elbo() {
    let (vae, x) = model(Likelihood::Bernoulli, vec![5], 4);
    let eps = Tensor::<f64>::randn(&[1, 4, 3], &mut StdRng::seed_from_u64(8));
    let iwae = neg_bound(&vae, &x, &eps, Objective::Iwae);
    let mc = neg_bound(&vae, &x, &eps, Objective::ElboMc);
    assert!((iwae - mc).abs() < 1e-12 * mc.abs(), "{iwae} vs {mc}");
    // The closed-form-KL ELBO averaged over many draws equals the log-weight ELBO averaged
    // over the same draws (both unbiased for the ELBO), within Monte Carlo error.
    let n = 4000;
    let eps = Tensor::<f64>::randn(&[n, 4, 3], &mut StdRng::seed_from_u64(9));
    let mc_many = neg_bound(&vae, &x, &eps, Objective::ElboMc);
    let noise: Vec<Tensor<f64>> = (0..n).map(|i| eps.narrow(0, i, 1).reshape(&[4, 3])).collect();
    let g = Graph::no_grad();
    let cfg = ElboConfig { samples: n, ..ElboConfig::default() };
    let closed = elbo_with_noise(&vae.bind(&g), g.constant(x.clone()), &noise, &cfg).loss.value().item();
    assert!((mc_many - closed).abs() < 0.05, "log-weight ELBO {mc_many} vs closed-form KL {closed}");
}

/// The bound tightens with k on average: over 50 draws each, k = 1 ≥ k = 5 ≥ k = 50 in
/// negative bound, and all stay above the k = 5000 estimate.
#[test]
fn the_bound_does_not_loosen_with_k() {
    let (vae, x) = model(Likelihood::Bernoulli, vec![5], 6);
    let mut rng = StdRng::seed_from_u64(11);
    let mut avg = |k: usize, draws: usize| mean_neg_bound(&vae, &x, k, draws, &mut rng);
    let (k1, k5, k50, k5000) = (avg(1, 50), avg(5, 50), avg(50, 50), avg(5000, 2));
    assert!(k1 > k5 && k5 > k50 && k50 > k5000 - 0.01, "{k1} {k5} {k50} {k5000}");
}

/// A model with a second stochastic layer (`q(z₂|z₁)`, `p(z₁|z₂)`), small enough to check.
fn two_layer(sigma: SigmaHead, seed: u64) -> (Vae<f64>, Tensor<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let config = VaeConfig {
        input: 6,
        hidden: vec![5],
        latent: 3,
        activation: Activation::Tanh,
        sigma,
        upper: vec![StochasticLayer { hidden: vec![4], latent: 2 }].into(),
        ..VaeConfig::default()
    };
    let vae = Vae::<f64>::new(config, &mut rng);
    let x = Tensor::<f64>::rand_uniform(&[4, 6], 0.0, 1.0, &mut rng).map(|v| v.round());
    (vae, x)
}

#[test]
fn two_stochastic_layers_match_finite_differences() {
    for objective in [Objective::ElboMc, Objective::Iwae] {
        for sigma in [SigmaHead::Logvar, SigmaHead::LogSigma] {
            let (vae, x) = two_layer(sigma, 3);
            // Noise for z₁ (3 units) and z₂ (2 units) side by side.
            let eps = Tensor::<f64>::randn(&[3, 4, 5], &mut StdRng::seed_from_u64(6));
            let report = gradcheck(
                |g, v| log_weight_bound(&vae.attach(v).unwrap(), g.constant(x.clone()), &eps, objective).loss,
                vae.params.tensors(),
                &GradcheckConfig::default(),
            );
            assert!(report.passed && report.max_rel_error <= 1e-6, "{objective} {sigma}: {report}");
            assert_eq!(report.checked, vae.params.numel());
        }
    }
}

/// The two-layer log weight against the densities written out by hand for one draw:
/// `log p(x|z₁) + log p(z₁|z₂) + log p(z₂) − log q(z₁|x) − log q(z₂|z₁)`.
#[test]
fn the_two_layer_log_weight_is_the_sum_of_its_densities() {
    let (vae, x) = two_layer(SigmaHead::LogSigma, 4);
    let eps = Tensor::<f64>::randn(&[1, 4, 5], &mut StdRng::seed_from_u64(2));
    let g = Graph::no_grad();
    let m = vae.bind(&g);
    let (log_w, _) = log_weights(&m, g.constant(x.clone()), &eps);
    let log_w = log_w.value().to_vec();
    let normal = |z: &[f64], mu: &[f64], logvar: &[f64]| -> f64 {
        z.iter()
            .zip(mu)
            .zip(logvar)
            .map(|((z, m), lv)| -0.5 * (LN_2PI + lv + (z - m).powi(2) / lv.exp()))
            .sum()
    };
    for (r, &got) in log_w.iter().enumerate() {
        let xr = g.constant(x.narrow(0, r, 1));
        let e = eps.narrow(1, r, 1).reshape(&[5]).to_vec();
        let (mu1, lv1) = m.encode(xr);
        let (mu1, lv1) = (mu1.value().to_vec(), lv1.value().to_vec());
        let z1: Vec<f64> = (0..3).map(|j| mu1[j] + (0.5 * lv1[j]).exp() * e[j]).collect();
        let z1v = g.constant(Tensor::from_vec(z1.clone(), &[1, 3]));
        let (mu2, lv2) = m.encode_upper(0, z1v);
        let (mu2, lv2) = (mu2.value().to_vec(), lv2.value().to_vec());
        let z2: Vec<f64> = (0..2).map(|j| mu2[j] + (0.5 * lv2[j]).exp() * e[3 + j]).collect();
        let (pm, plv) = m.prior_upper(0, g.constant(Tensor::from_vec(z2.clone(), &[1, 2])));
        let logits = m.decode(z1v).out.value().to_vec();
        let xs = x.narrow(0, r, 1).to_vec();
        let log_px: f64 = xs.iter().zip(&logits).map(|(x, l)| x * l - (1.0 + l.exp()).ln()).sum();
        let want = log_px
            + normal(&z1, &pm.value().to_vec(), &plv.value().to_vec())
            + normal(&z2, &[0.0; 2], &[0.0; 2])
            - normal(&z1, &mu1, &lv1)
            - normal(&z2, &mu2, &lv2);
        assert!((got - want).abs() < 1e-10, "image {r}: {got} vs {want}");
    }
}

/// With two layers too: k = 1 gives the Monte Carlo ELBO on the same draw, and the bound
/// tightens with k on average.
#[test]
fn two_layer_bounds_at_k_1_and_with_k() {
    let (vae, x) = two_layer(SigmaHead::Logvar, 5);
    let eps = Tensor::<f64>::randn(&[1, 4, 5], &mut StdRng::seed_from_u64(8));
    let (iwae, mc) =
        (neg_bound(&vae, &x, &eps, Objective::Iwae), neg_bound(&vae, &x, &eps, Objective::ElboMc));
    assert!((iwae - mc).abs() < 1e-12 * mc.abs(), "{iwae} vs {mc}");
    let mut rng = StdRng::seed_from_u64(12);
    let mut avg = |k: usize, draws: usize| mean_neg_bound(&vae, &x, k, draws, &mut rng);
    let (k1, k5, k50) = (avg(1, 100), avg(5, 100), avg(50, 100));
    assert!(k1 > k5 && k5 > k50, "{k1} {k5} {k50}");
}
