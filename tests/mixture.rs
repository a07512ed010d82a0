//! The mixture of Bernoulli images: EM never decreases its objective (the exact
//! log-likelihood, plus the log prior when there is one), and EM and gradient ascent through
//! the tape reach the same optimum.

use lessons::mixture::{gradient_ascent, BernoulliMixture};
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};
use tensor::Tensor;

/// `n` binary images of `d` pixels from three well separated prototypes, each pixel flipped
/// with probability 0.15.
fn three_prototypes(n: usize, d: usize, rng: &mut impl Rng) -> Tensor<f64> {
    let protos: Vec<Vec<bool>> =
        (0..3).map(|k| (0..d).map(|j| (j * 7 + k * 3) % 5 < 2 + k % 2).collect()).collect();
    let mut v = Vec::with_capacity(n * d);
    for _ in 0..n {
        let p = &protos[rng.random_range(0..3)];
        v.extend(p.iter().map(|&on| if on ^ (rng.random::<f64>() < 0.15) { 1.0 } else { 0.0 }));
    }
    Tensor::from_vec(v, &[n, d])
}

#[test]
fn em_never_decreases_its_objective() {
    let mut rng = StdRng::seed_from_u64(11);
    let x = three_prototypes(300, 12, &mut rng);
    for (prior, k) in [(0.0, 3), (0.0, 6), (1.0, 4), (0.05, 8)] {
        let mut m = BernoulliMixture::init(&x, k, &mut StdRng::seed_from_u64(k as u64)).unwrap();
        let mut last = f64::NEG_INFINITY;
        let mut first = None;
        for it in 0..60 {
            let step = m.em_step(&x, prior);
            // Without a prior the objective is the log-likelihood itself.
            if prior == 0.0 {
                assert_eq!(step.objective, step.log_likelihood);
            }
            assert!(
                step.objective >= last - 1e-12,
                "prior {prior} K {k}: iteration {it} went from {last} to {}",
                step.objective
            );
            last = step.objective;
            first.get_or_insert(step.objective);
        }
        assert!(last > first.unwrap() + 0.1, "EM should improve a random start");
    }
}

#[test]
fn em_and_gradient_ascent_reach_the_same_optimum() {
    let mut rng = StdRng::seed_from_u64(3);
    let x = three_prototypes(200, 8, &mut rng);
    // The exact log-likelihood alone (maximum likelihood), and with a prior on the means.
    for prior in [0.0, 0.5] {
        let start = BernoulliMixture::init(&x, 3, &mut StdRng::seed_from_u64(9)).unwrap();
        let mut em = start.clone();
        for _ in 0..2000 {
            em.em_step(&x, prior);
        }
        let ga = gradient_ascent(&start, &x, prior, 4000, 0.02);
        let objective = |m: &BernoulliMixture<f64>| m.log_likelihood(&x) + m.log_prior(prior);
        let (a, b) = (objective(&em), objective(&ga));
        assert!((a - b).abs() < 1e-6 * a.abs(), "prior {prior}: EM {a} vs gradient ascent {b}");
        // The same components, perhaps in another order (the likelihood does not see labels).
        let perms = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
        let gap = |p: &[usize; 3]| {
            let means = (&em.means - &ga.means.select_rows(p)).abs().max().item();
            let w = (&em.log_weights.exp() - &ga.log_weights.exp().select_rows(p)).abs().max().item();
            means.max(w)
        };
        let best = perms.iter().map(gap).fold(f64::INFINITY, f64::min);
        assert!(best < 1e-3, "prior {prior}: means or weights differ by {best} in the best matching order");
        // And the optimum is a real one: EM moved far from the start.
        assert!(a > objective(&start) + 100.0);
    }
}
