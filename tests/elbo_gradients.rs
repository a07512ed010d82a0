//! Gradient checks of the ELBO in f64 on a small model, with and without the
//! reparameterization trick, and the KL and likelihood terms against closed forms and Monte
//! Carlo estimates.

use autograd::{gradcheck, GradcheckConfig, Graph, Var};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::Tensor;
use vae::elbo::{
    elbo_with_noise, kl_standard_normal, log_likelihood, log_normal_diag, sample_noise, ElboConfig,
    Estimator, LN_2PI,
};
use vae::model::{Likelihood, Vae, VaeConfig};

fn small(likelihood: Likelihood, seed: u64) -> (Vae<f64>, Tensor<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let model = Vae::<f64>::new(
        VaeConfig { input: 6, hidden: vec![5], latent: 3, likelihood, ..VaeConfig::default() },
        &mut rng,
    );
    let x = Tensor::rand_uniform(&[4, 6], 0.0, 1.0, &mut rng);
    (model, x)
}

/// Parameter names of the encoder (whose gradient the estimators differ on).
fn is_encoder(name: &str) -> bool {
    name.starts_with("fc1.") || name.starts_with("fc2")
}

#[test]
fn reparameterized_elbo_matches_finite_differences_for_every_likelihood() {
    for likelihood in [Likelihood::Bernoulli, Likelihood::Gaussian, Likelihood::GaussianLearned] {
        let (model, x) = small(likelihood, 3);
        let mut rng = StdRng::seed_from_u64(9);
        let noise = sample_noise::<f64, _>(2, 4, 3, &mut rng);
        let cfg = ElboConfig { samples: 2, beta: 0.7, ..ElboConfig::default() };
        let report = gradcheck(
            |g, v| elbo_with_noise(&model.attach(v).unwrap(), g.constant(x.clone()), &noise, &cfg).loss,
            model.params.tensors(),
            &GradcheckConfig::default(),
        );
        println!("{likelihood}: {report}");
        assert!(report.passed && report.max_rel_error <= 1e-6, "{likelihood}: {report}");
        assert_eq!(report.checked, model.params.numel());
    }
}

/// The convolutional model (8×8 images, two 4×4 stride-2 convolutions of 2 and 3 channels,
/// a dense hidden layer, and the mirror image) through the same ELBO, for every likelihood:
/// every parameter's gradient, convolutions and transposed convolutions alike.
#[test]
fn a_convolutional_vae_matches_finite_differences() {
    use vae::config::ConvNet;
    for likelihood in [Likelihood::Bernoulli, Likelihood::GaussianLearned] {
        let mut rng = StdRng::seed_from_u64(4);
        let config = VaeConfig {
            input: 64,
            hidden: vec![5],
            latent: 3,
            likelihood,
            conv: Some(ConvNet { side: 8, channels: vec![2, 3] }).into(),
            ..VaeConfig::default()
        };
        let model = Vae::<f64>::new(config, &mut rng);
        let x = Tensor::rand_uniform(&[3, 64], 0.0, 1.0, &mut rng);
        let noise = sample_noise::<f64, _>(2, 3, 3, &mut rng);
        let cfg = ElboConfig { samples: 2, ..ElboConfig::default() };
        let report = gradcheck(
            |g, v| elbo_with_noise(&model.attach(v).unwrap(), g.constant(x.clone()), &noise, &cfg).loss,
            model.params.tensors(),
            &GradcheckConfig::default(),
        );
        println!("conv {likelihood}: {report}");
        assert!(report.passed && report.max_rel_error <= 1e-6, "conv {likelihood}: {report}");
        assert_eq!(report.checked, model.params.numel());
    }
}

/// Gradients of the loss for one draw of noise, flattened in parameter order.
fn flat_grads(model: &Vae<f64>, x: &Tensor<f64>, noise: &[Tensor<f64>], estimator: Estimator) -> Vec<f64> {
    let g = Graph::new();
    let bound = model.bind(&g);
    let cfg = ElboConfig { samples: noise.len(), estimator, ..ElboConfig::default() };
    let loss = elbo_with_noise(&bound, g.constant(x.clone()), noise, &cfg).loss;
    let grads = loss.backward();
    bound.vars().iter().flat_map(|&v| grads.get_or_zeros(v).to_vec()).collect()
}

#[test]
fn without_the_trick_only_the_decoder_sees_the_reconstruction() {
    let (model, x) = small(Likelihood::Bernoulli, 5);
    let mut rng = StdRng::seed_from_u64(2);
    let noise = sample_noise::<f64, _>(1, 4, 3, &mut rng);
    let params = model.params.tensors().to_vec();
    let names = model.params.names().to_vec();

    // z sampled once from the current encoder and held fixed.
    let z = {
        let g = Graph::no_grad();
        let (mu, logvar) = model.bind(&g).encode(g.constant(x.clone()));
        Vae::reparameterize(mu, logvar, g.constant(noise[0].clone())).value()
    };
    // 1. Decoder gradients at the fixed z match finite differences.
    let n_enc = names.iter().filter(|n| is_encoder(n)).count();
    let report = gradcheck(
        |g, v| {
            let mut vars: Vec<Var<'_, f64>> = params[..n_enc].iter().map(|t| g.constant(t.clone())).collect();
            vars.extend_from_slice(v);
            -log_likelihood(
                Likelihood::Bernoulli,
                model.attach(&vars).unwrap().decode(g.constant(z.clone())),
                g.constant(x.clone()),
            )
            .sum()
        },
        &params[n_enc..],
        &GradcheckConfig::default(),
    );
    assert!(report.passed && report.max_rel_error <= 1e-6, "decoder at fixed z: {report}");

    // 2. With z detached, the reconstruction term gives the encoder no gradient at all …
    let g = Graph::new();
    let bound = model.bind(&g);
    let (mu, logvar) = bound.encode(g.constant(x.clone()));
    let zd = Vae::reparameterize(mu, logvar, g.constant(noise[0].clone())).detach();
    let recon = -log_likelihood(Likelihood::Bernoulli, bound.decode(zd), g.constant(x.clone())).sum();
    let vars = bound.vars();
    let grads = recon.backward();
    let detached: Vec<f64> = vars[..n_enc].iter().flat_map(|&v| grads.get_or_zeros(v).to_vec()).collect();
    assert!(detached.iter().all(|&d| d == 0.0));

    // … while the fixed-eps reconstruction term does depend on the encoder: its finite
    // differences are far from zero.
    let report = gradcheck(
        |g, v| {
            let mut vars: Vec<Var<'_, f64>> = v.to_vec();
            vars.extend(params[n_enc..].iter().map(|t| g.constant(t.clone())));
            // The fixed-eps reconstruction term through a detached z: values still flow
            // from the encoder (so finite differences see it), gradients do not.
            let bound = model.attach(&vars).unwrap();
            let (mu, logvar) = bound.encode(g.constant(x.clone()));
            let zd = Vae::reparameterize(mu, logvar, g.constant(noise[0].clone())).detach();
            -log_likelihood(Likelihood::Bernoulli, bound.decode(zd), g.constant(x.clone())).sum()
        },
        &params[..n_enc],
        &GradcheckConfig::default(),
    );
    assert!(!report.passed, "the detached gradient should differ from finite differences: {report}");
    let w = report.worst.unwrap();
    assert_eq!(w.analytic, 0.0);
    assert!(w.numeric.abs() > 1e-3, "{w:?}");
}

#[test]
fn score_function_estimator_is_unbiased_with_larger_variance() {
    let mut rng = StdRng::seed_from_u64(11);
    let model =
        Vae::<f64>::new(VaeConfig { input: 4, hidden: vec![3], latent: 2, ..VaeConfig::default() }, &mut rng);
    let x = Tensor::<f64>::from_vec(vec![0.9, 0.1, 0.6, 0.3], &[1, 4]);
    let n_enc = model.params.names().iter().filter(|n| is_encoder(n)).count();
    let n_enc_scalars: usize = model.params.tensors()[..n_enc].iter().map(Tensor::len).sum();
    let draws = 20_000;
    let estimators = [Estimator::Reparam, Estimator::Score, Estimator::ScoreBaseline];
    let mut stats = vec![(vec![0.0; n_enc_scalars], vec![0.0; n_enc_scalars]); estimators.len()];
    for _ in 0..draws {
        let noise = sample_noise::<f64, _>(1, 1, 2, &mut rng);
        for (k, &est) in estimators.iter().enumerate() {
            let g = flat_grads(&model, &x, &noise, est);
            for (i, &v) in g[..n_enc_scalars].iter().enumerate() {
                stats[k].0[i] += v;
                stats[k].1[i] += v * v;
            }
        }
    }
    let n = draws as f64;
    let mut total_var = vec![0.0; estimators.len()];
    for i in 0..n_enc_scalars {
        let moments: Vec<(f64, f64)> = stats
            .iter()
            .map(|(sum, sq)| {
                let m = sum[i] / n;
                (m, sq[i] / n - m * m)
            })
            .collect();
        let (mr, vr) = moments[0];
        for (k, &(m, v)) in moments.iter().enumerate().skip(1) {
            let se = ((vr + v) / n).sqrt();
            assert!(
                (mr - m).abs() <= 4.0 * se + 1e-12,
                "coordinate {i}: reparam mean {mr}, {} mean {m}, standard error {se}",
                estimators[k]
            );
        }
        for (t, (_, v)) in total_var.iter_mut().zip(&moments) {
            *t += v;
        }
    }
    let (ratio, with_baseline) = (total_var[1] / total_var[0], total_var[2] / total_var[0]);
    println!(
        "gradient variance against the reparameterization's (summed over encoder parameters): score {ratio:.2}, score with baseline {with_baseline:.2}"
    );
    assert!(ratio > 1.0, "variance ratio {ratio}");
    assert!(
        with_baseline < ratio,
        "the baseline did not lower the variance: {with_baseline} against {ratio}"
    );
}

#[test]
fn kl_and_likelihoods_match_closed_forms_and_monte_carlo() {
    let mut rng = StdRng::seed_from_u64(4);
    let mu = Tensor::<f64>::from_vec(vec![0.3, -1.2, 0.8], &[1, 3]);
    let logvar = Tensor::<f64>::from_vec(vec![-0.5, 0.4, 0.1], &[1, 3]);
    let g = Graph::<f64>::no_grad();
    let (m, lv) = (g.constant(mu.clone()), g.constant(logvar.clone()));
    let kl = kl_standard_normal(m, lv).value().item();
    // Closed form, written out per dimension.
    let want: f64 = (0..3)
        .map(|i| {
            let (u, l) = (mu.to_vec()[i], logvar.to_vec()[i]);
            0.5 * (u * u + l.exp() - 1.0 - l)
        })
        .sum();
    assert!((kl - want).abs() < 1e-12);
    // Monte Carlo: E_q[log q(z) − log p(z)].
    let n = 200_000;
    let eps = Tensor::<f64>::randn(&[n, 3], &mut rng);
    let z = &(&eps * &logvar.mul_scalar(0.5).exp()) + &mu;
    let zv = g.constant(z.clone());
    let logq = log_normal_diag(zv, m, lv).value();
    let zeros = g.constant(Tensor::zeros(&[1, 3]));
    let logp = log_normal_diag(zv, zeros, zeros).value();
    let diffs = (&logq - &logp).to_vec();
    let mean = diffs.iter().sum::<f64>() / n as f64;
    let sd = (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
    assert!((mean - kl).abs() < 4.0 * sd / (n as f64).sqrt(), "MC {mean} vs {kl}");

    // Likelihoods against their textbook formulas.
    let x = Tensor::<f64>::from_vec(vec![0.0, 1.0, 0.25, 0.9], &[1, 4]);
    let out = Tensor::<f64>::from_vec(vec![-2.0, 3.0, 0.5, 0.0], &[1, 4]);
    let lvx = Tensor::<f64>::from_vec(vec![-1.0, 0.3, 0.0, 2.0], &[1, 4]);
    let xs = x.to_vec();
    let os = out.to_vec();
    let ls = lvx.to_vec();
    let dec = |logvar| vae::model::DecoderOut { out: g.constant(out.clone()), logvar };
    let bern = log_likelihood(Likelihood::Bernoulli, dec(None), g.constant(x.clone())).value().item();
    let want: f64 = (0..4)
        .map(|i| {
            let p = 1.0 / (1.0 + (-os[i]).exp());
            xs[i] * p.ln() + (1.0 - xs[i]) * (1.0 - p).ln()
        })
        .sum();
    assert!((bern - want).abs() < 1e-12);
    let gauss = log_likelihood(Likelihood::Gaussian, dec(None), g.constant(x.clone())).value().item();
    let want: f64 = (0..4).map(|i| -0.5 * (xs[i] - os[i]).powi(2) - 0.5 * LN_2PI).sum();
    assert!((gauss - want).abs() < 1e-12);
    let learned = log_likelihood(
        Likelihood::GaussianLearned,
        dec(Some(g.constant(lvx.clone()))),
        g.constant(x.clone()),
    )
    .value()
    .item();
    // The decoder's variance is e^h + (1/255)².
    let var = |h: f64| h.exp() + (1.0f64 / 255.0).powi(2);
    let want: f64 =
        (0..4).map(|i| -0.5 * (LN_2PI + var(ls[i]).ln() + (xs[i] - os[i]).powi(2) / var(ls[i]))).sum();
    assert!((learned - want).abs() < 1e-12);
    // However small the variance head, a perfect reconstruction's log-density stays at most
    // ln 255 − ½ ln 2π per pixel, and finite.
    let tiny = log_likelihood(
        Likelihood::GaussianLearned,
        vae::model::DecoderOut {
            out: g.constant(x.clone()),
            logvar: Some(g.constant(Tensor::full(&[1, 4], -1e4))),
        },
        g.constant(x.clone()),
    )
    .value()
    .item();
    let ceiling = 4.0 * (255f64.ln() - 0.5 * LN_2PI);
    assert!(tiny.is_finite() && tiny <= ceiling + 1e-9 && tiny > ceiling - 1e-6, "{tiny} against {ceiling}");
}

/// The reparameterized ELBO of k draws (one batch through the decoder) is the mean of the
/// k one-draw ELBOs, in value and in every parameter's gradient, for every likelihood.
#[test]
fn k_draws_in_one_batch_are_the_mean_of_k_single_draws() {
    for likelihood in [Likelihood::Bernoulli, Likelihood::Gaussian, Likelihood::GaussianLearned] {
        let (model, x) = small(likelihood, 5);
        let mut rng = StdRng::seed_from_u64(11);
        let noise = sample_noise::<f64, _>(3, 4, 3, &mut rng);
        let cfg = ElboConfig { samples: 3, beta: 0.7, ..ElboConfig::default() };
        // Loss, reported reconstruction and gradients of the objective with `noise`.
        type Run = (f64, f64, Vec<Vec<f64>>);
        let run = |noise: &[Tensor<f64>]| -> Run {
            let g = Graph::new();
            let vars = model.params.bind(&g);
            let terms = elbo_with_noise(&model.attach(&vars).unwrap(), g.constant(x.clone()), noise, &cfg);
            let mut store = terms.loss.backward();
            let grads: Vec<Vec<f64>> = vars.iter().map(|&v| store.take(v).unwrap().to_vec()).collect();
            (terms.loss.value().item(), terms.recon, grads)
        };
        let (loss, recon, grads) = run(&noise);
        let singles: Vec<_> = noise.iter().map(|e| run(std::slice::from_ref(e))).collect();
        let mean = |f: &dyn Fn(&Run) -> f64| singles.iter().map(f).sum::<f64>() / 3.0;
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * (1.0 + b.abs());
        assert!(close(loss, mean(&|s| s.0)), "{likelihood}: loss {loss} against {}", mean(&|s| s.0));
        assert!(close(recon, mean(&|s| s.1)), "{likelihood}: reconstruction {recon}");
        for (p, grad) in grads.iter().enumerate() {
            for (i, &v) in grad.iter().enumerate() {
                let want = mean(&|s| s.2[p][i]);
                assert!(close(v, want), "{likelihood}: parameter {p}[{i}]: {v} against {want}");
            }
        }
    }
}
