//! The log-weight objectives (the Monte Carlo ELBO as a mean of `log w`, and the
//! importance-weighted bound): gradient checks in f64, the IWAE bound at k = 1 against the
//! Monte Carlo ELBO on the same draw, and the bound not decreasing with k.

use autograd::{gradcheck, GradcheckConfig, Graph};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::Tensor;
use vae::config::{Activation, Likelihood, Objective, SigmaHead, VaeConfig};
use vae::elbo::{elbo_with_noise, log_weight_bound, ElboConfig};
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
                |g, v| log_weight_bound(&vae.attach(v), g.constant(x.clone()), &eps, objective).loss,
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
    let mut avg = |k: usize, draws: usize| {
        (0..draws)
            .map(|_| neg_bound(&vae, &x, &Tensor::randn(&[k, 4, 3], &mut rng), Objective::Iwae))
            .sum::<f64>()
            / draws as f64
    };
    let (k1, k5, k50, k5000) = (avg(1, 50), avg(5, 50), avg(50, 50), avg(5000, 2));
    assert!(k1 > k5 && k5 > k50 && k50 > k5000 - 0.01, "{k1} {k5} {k50} {k5000}");
}
