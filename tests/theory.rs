//! The claims of the theory examples: least squares equals maximum likelihood under Gaussian
//! noise, a linear autoencoder spans the PCA subspace, and input noise makes an over-complete
//! autoencoder denoise better than the identity map.

use std::path::PathBuf;

use lessons::linalg::{least_squares, orthonormalize, principal_angles, top_eigenvectors};
use lessons::theory::{
    covariance, fit_linear_regression, gaussian_log_likelihood, mean_squared_error, train_linear_autoencoder,
    Autoencoder, Corruption, RegressionLoss,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::Tensor;
use vae::checkpoint;
use vae::data::{Dataset, Mnist};

/// With one learning rate, gradient descent on the MSE and on the Gaussian NLL (σ fixed at
/// two values, or learned) reaches the least-squares fit; the learned σ² is the least-squares
/// fit's mean squared residual per output. A loss whose minimizer differed (a wrong σ term, a
/// per-output weighting) would land elsewhere.
#[test]
fn gradient_descent_on_mse_and_on_gaussian_nll_find_the_least_squares_fit() {
    let mut rng = StdRng::seed_from_u64(3);
    let x = Tensor::<f64>::randn(&[400, 3], &mut rng);
    let w = Tensor::from_vec(vec![0.7, -1.3, 2.0, 0.1, 0.4, -0.6], &[2, 3]);
    let noise = &Tensor::<f64>::randn(&[400, 2], &mut rng) * &Tensor::from_vec(vec![0.5, 1.5], &[2]);
    let y = &x.matmul(&w.t()).add_scalar(0.3) + &noise;
    let (w_ls, b_ls) = least_squares(&x, &y).unwrap();
    let gap = |a: &Tensor<f64>, b: &Tensor<f64>| (a - b).abs().max().item();
    for loss in [
        RegressionLoss::Mse,
        RegressionLoss::GaussianNll { sigma: 0.5 },
        RegressionLoss::GaussianNll { sigma: 2.0 },
        RegressionLoss::GaussianNllLearnedSigma,
    ] {
        let fit = fit_linear_regression(&x, &y, loss, 1500, 0.05).unwrap();
        assert!(gap(&fit.weight, &w_ls) < 1e-6 && gap(&fit.bias, &b_ls) < 1e-6, "{loss:?} vs least squares");
        assert_eq!(fit.sigma.is_some(), loss == RegressionLoss::GaussianNllLearnedSigma);
        if let Some(sigma) = fit.sigma {
            let residual = &y - &(&x.matmul(&w_ls.t()) + &b_ls);
            let ms = residual.square().sum_axis(0, false).mul_scalar(1.0 / 400.0);
            let ratio = &sigma.square() / &ms;
            assert!(
                ratio.to_vec().iter().all(|r| (r - 1.0).abs() < 1e-6),
                "σ²/residual {:?}",
                ratio.to_vec()
            );
        }
    }
}

/// The maximum-likelihood Gaussian of a sample is its mean and its covariance divided by n:
/// every other (mean, covariance) nearby gives the data a lower likelihood, including the
/// unbiased covariance (divided by n − 1).
#[test]
fn the_gaussian_mle_is_the_sample_mean_and_covariance() {
    let mut rng = StdRng::seed_from_u64(8);
    let mix = Tensor::from_vec(vec![1.0, 0.0, 0.0, 0.8, 0.6, 0.0, -0.3, 0.2, 0.5], &[3, 3]);
    let x = &Tensor::<f64>::randn(&[500, 3], &mut rng).matmul(&mix)
        + &Tensor::from_vec(vec![1.0, -2.0, 0.5], &[3]);
    let (cov, mean) = covariance(&x);
    let best = gaussian_log_likelihood(&x, &mean, &cov).unwrap();
    let unbiased = cov.mul_scalar(500.0 / 499.0);
    assert!(gaussian_log_likelihood(&x, &mean, &unbiased).unwrap() < best);
    for _ in 0..50 {
        let dm = Tensor::<f64>::randn(&[3], &mut rng).mul_scalar(0.05);
        let a = Tensor::<f64>::randn(&[3, 3], &mut rng).mul_scalar(0.01);
        let dc = (&a + &a.t()).mul_scalar(0.5);
        let ll = gaussian_log_likelihood(&x, &(&mean + &dm), &(&cov + &dc)).unwrap();
        assert!(ll < best, "{ll} ≥ {best}");
    }
    assert!(gaussian_log_likelihood(&x, &mean, &cov.mul_scalar(-1.0)).is_none());
}

#[test]
fn a_linear_autoencoder_spans_the_principal_subspace() {
    // Synthetic data: a 3-dimensional signal with well separated variances in 12 dimensions,
    // plus small isotropic noise.
    let mut rng = StdRng::seed_from_u64(5);
    let basis = orthonormalize(&Tensor::<f64>::randn(&[12, 3], &mut rng));
    let scales = Tensor::from_vec(vec![3.0, 2.0, 1.2], &[3]);
    let signal = (&Tensor::<f64>::randn(&[3000, 3], &mut rng) * &scales).matmul(&basis.t());
    let x = &signal + &Tensor::<f64>::randn(&[3000, 12], &mut rng).mul_scalar(0.1);
    let (cov, mean) = covariance(&x);
    let pca = top_eigenvectors(&cov, 3, 200, 1);
    assert!(principal_angles(&pca, &basis)[0].to_degrees() < 1.0);
    let centered = (&x - &mean).cast::<f32>();
    let (decoder, _) = train_linear_autoencoder(&centered, 3, 30, 64, 3e-3, &mut rng).unwrap();
    let largest = principal_angles(&decoder.cast::<f64>(), &pca)[0].to_degrees();
    assert!(largest < 2.0, "largest principal angle {largest:.3}°");
    // A random 3-dimensional subspace is nowhere near.
    let random = Tensor::<f64>::randn(&[12, 3], &mut rng);
    assert!(principal_angles(&random, &pca)[0].to_degrees() > 20.0);
}

#[test]
fn a_denoising_autoencoder_denoises_better_than_the_identity() {
    let mnist = Mnist::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist")).unwrap();
    let (mut train, mut test) = (mnist.train, mnist.test);
    train.truncate(3000);
    test.truncate(500);
    let all = |n: usize| (0..n).collect::<Vec<_>>();
    let x = train.intensities::<f32>(&all(train.len()));
    let clean = test.intensities::<f32>(&all(test.len()));
    let mut rng = StdRng::seed_from_u64(1);
    let noise = Corruption::Mask(0.5);
    let noisy = noise.apply(&clean, &mut rng);
    let mut dae = Autoencoder::new(784, 900, &mut rng);
    dae.train(&x, noise, 3, 64, 1e-3, &mut rng).unwrap();
    let identity = mean_squared_error(&noisy, &clean);
    let denoised = mean_squared_error(&dae.reconstruct(&noisy), &clean);
    assert!(denoised < 0.8 * identity, "denoised {denoised:.3} vs identity {identity:.3}");
}

/// The 2-D model shipped with the web page (`web/model/mnist-2d.safetensors`).
fn shipped_2d_model() -> vae::model::Vae<f32> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web/model/mnist-2d.safetensors");
    let bytes = checkpoint::read_file(&path).unwrap();
    let (config, _) = checkpoint::read_meta(&path, &bytes).unwrap();
    assert_eq!(config.model.latent, 2);
    checkpoint::from_bytes(&path, &bytes, &config).unwrap().0.model
}

/// The web page's digits: `web/data/{set}-{n}-…` (`train` 5,000 or `t10k` 2,000).
fn web_digits(set: &str, n: usize) -> Dataset {
    let file = |kind: &str| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("web/data/{set}-{n}-{kind}-ubyte.gz"))
    };
    Dataset::load(&file("images-idx3"), &file("labels-idx1")).unwrap()
}

/// The manifold hypothesis, measured: two numbers per digit on the surface a VAE learned
/// (the 2-D model shipped with the web page, `web/model/mnist-2d.safetensors`) reconstruct
/// the first 2,000 test digits with far less squared error than two numbers on the best
/// plane through the data (PCA of the first 5,000 training digits), which in turn beats
/// the mean image. A flat 2-D subspace is the best that any linear code of two numbers can
/// do, so the gap is what the curvature of the learned surface buys.
#[test]
fn two_numbers_on_a_learned_manifold_reconstruct_digits_better_than_the_best_plane() {
    let (train, test) = (web_digits("train", 5000), web_digits("t10k", 2000));
    let all = |d: &Dataset| d.intensities::<f64>(&(0..d.len()).collect::<Vec<_>>());
    let (x_train, x_test) = (all(&train), all(&test));
    let per_image = |recon: &Tensor<f64>| (recon - &x_test).square().sum().item() / 2000.0;

    let model = shipped_2d_model();
    let z = model.encode_mean(&x_test.cast::<f32>());
    let vae = per_image(&model.decode_mean(&z).cast::<f64>());

    let (cov, mean) = covariance(&x_train);
    let plane = top_eigenvectors(&cov, 2, 300, 1);
    let pca = per_image(&(&(&x_test - &mean).matmul(&plane).matmul(&plane.t()) + &mean));
    let mean_image = per_image(&(&x_test.mul_scalar(0.0) + &mean));
    println!("squared error per test image: 2-D VAE {vae:.2}, best plane (PCA, 2) {pca:.2}, mean image {mean_image:.2}");
    // Of the mean image's error, the learned surface removes more than twice what the
    // plane removes (35 % against 16 %).
    assert!(mean_image - vae > 2.0 * (mean_image - pca), "2-D VAE {vae}, PCA {pca}, mean {mean_image}");
    assert!(pca < 0.9 * mean_image, "PCA {pca}, mean image {mean_image}");
}

/// The aggregate posterior of the shipped 2-D VAE over 2,000 test digits has the prior's
/// moments nearly (the per-dimension KLs sum to under 0.1), yet it differs from the prior
/// jointly (MMD² far above two prior draws'), leaves holes where the prior puts mass, and
/// prior samples from the holes decode farther from every real digit than those from the
/// densest regions.
#[test]
fn the_aggregate_posterior_leaves_holes_that_decode_badly() {
    use lessons::holes::{mmd2, nearest_distance, AggregatePosterior};
    let model = shipped_2d_model();
    let test = web_digits("t10k", 2000);
    let x = test.intensities::<f32>(&(0..test.len()).collect::<Vec<_>>());
    let q = AggregatePosterior::of(&model, &x);
    let kl: f64 = q.per_dimension().iter().map(|g| g.kl).sum();
    assert!(kl < 0.1, "moment-matched KL {kl}");

    let mut rng = StdRng::seed_from_u64(1);
    let from_q = q.sample(&mut rng);
    let prior = Tensor::<f64>::randn(&[2000, 2], &mut rng);
    let prior2 = Tensor::<f64>::randn(&[2000, 2], &mut rng);
    let (gap, floor) = (mmd2(&from_q, &prior, 2f64.sqrt()), mmd2(&prior2, &prior, 2f64.sqrt()));
    assert!(gap > 0.005 && gap > 20.0 * floor.abs(), "MMD² {gap} against {floor}");

    let ratio = q.log_ratio(&prior);
    let holes = ratio.iter().filter(|&&r| r < -(10f64.ln())).count();
    assert!(holes > 200, "{holes} of 2000 prior samples where q < p/10");
    let mut order: Vec<usize> = (0..2000).collect();
    order.sort_by(|&a, &b| ratio[a].total_cmp(&ratio[b]));
    let distance = |rows: &[usize]| {
        let d = nearest_distance(&model.decode_mean(&prior.select_rows(rows).cast::<f32>()), &x);
        d.iter().sum::<f64>() / d.len() as f64
    };
    let (deep, dense) = (distance(&order[..200]), distance(&order[1800..]));
    assert!(deep > 1.1 * dense, "holes {deep}, dense {dense}");
}

/// The amortization gap of the shipped 2-D VAE on 200 test digits: refining each image's
/// `q(z|x)` from the encoder's raises the ELBO by over a nat per image; with no refinement
/// steps the two are the same estimate.
#[test]
fn refining_each_q_beats_the_encoder_by_the_amortization_gap() {
    use lessons::amortization::{elbo_per_image, encoder_q, refine};
    let model = shipped_2d_model();
    let mut test = web_digits("t10k", 2000);
    test.truncate(200);
    let x = test.intensities::<f32>(&(0..200).collect::<Vec<_>>());
    let start = encoder_q(&model, &x);
    let mut rng = StdRng::seed_from_u64(1);
    let eval = |q| elbo_per_image(&model, &x, q, 100, &mut StdRng::seed_from_u64(9));
    let unrefined = refine(&model, &x, &start, 0, 0.01, &mut rng).unwrap();
    assert_eq!(eval(&start), eval(&unrefined));
    let refined = refine(&model, &x, &start, 300, 0.01, &mut rng).unwrap();
    let (before, after) = (eval(&start), eval(&refined));
    println!("ELBO per image: encoder {before:.3}, refined {after:.3}");
    assert!(after - before > 1.0, "encoder {before}, refined {after}");
}
