//! The whole training step gives the same bits at any thread count: a few steps of the
//! default model, of the convolutional one (large enough that every product and kernel
//! splits) and of Burda et al.'s two-stochastic-layer IWAE (a layer's two gradient products
//! run at once) on pools of 1, 2, 7 and 32 threads leave bit-identical parameters and
//! losses. So does the importance-weighted evaluation, whose noise is drawn on the pool.

use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::Tensor;
use vae::config::{ConvNet, Objective};
use vae::elbo::iwae_log_likelihood;
use vae::run::IWAE_ROWS;
use vae::train::{TrainConfig, Trainer};

/// Losses and the bits of every parameter after four steps of `config` on a pool of
/// `threads` threads.
fn train_on(config: &TrainConfig, threads: usize) -> (Vec<u64>, Vec<Vec<u32>>) {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        assert_eq!(rayon::current_num_threads(), threads);
        let mut rng = StdRng::seed_from_u64(3);
        let mut trainer = Trainer::new(config.clone());
        let x = Tensor::<f32>::rand_uniform(&[128, 784], 0.0, 1.0, &mut rng);
        let losses = (0..4).map(|_| trainer.step(x.clone(), &mut rng).unwrap().to_bits()).collect();
        let params = trainer
            .model
            .params
            .tensors()
            .iter()
            .map(|t| t.to_vec().iter().map(|v| v.to_bits()).collect())
            .collect();
        (losses, params)
    })
}

fn same_bits_on_every_pool(config: &TrainConfig, what: &str) {
    let one = train_on(config, 1);
    for threads in [2, 7, 32] {
        let other = train_on(config, threads);
        assert!(one.0 == other.0, "{what}: losses differ between 1 and {threads} threads");
        assert!(one.1 == other.1, "{what}: parameters differ between 1 and {threads} threads");
    }
}

#[test]
fn a_training_step_gives_the_same_bits_on_1_2_7_and_32_threads() {
    same_bits_on_every_pool(&TrainConfig::default(), "default model");
}

#[test]
fn a_convolutional_training_step_gives_the_same_bits_on_1_2_7_and_32_threads() {
    let mut config = TrainConfig::default();
    config.model.hidden.clear();
    config.model.conv = Some(ConvNet { side: 28, channels: vec![32, 64] }).into();
    same_bits_on_every_pool(&config, "convolutional model");
}

#[test]
fn a_two_layer_iwae_step_gives_the_same_bits_on_1_2_7_and_32_threads() {
    same_bits_on_every_pool(&TrainConfig::burda(Objective::Iwae, 5, 2), "two-layer IWAE, k = 5");
}

#[test]
fn the_importance_weighted_evaluation_gives_the_same_bits_on_1_2_7_and_32_threads() {
    let trainer = Trainer::new(TrainConfig::burda(Objective::Iwae, 1, 1));
    let x = Tensor::<f32>::rand_uniform(&[2, 784], 0.0, 1.0, &mut StdRng::seed_from_u64(5));
    // 2·400·50 = 40,000 draws: three blocks of noise, drawn in parallel.
    let estimate = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let ll = iwae_log_likelihood(&trainer.model, &x, 400, IWAE_ROWS, &mut StdRng::seed_from_u64(6));
            ll.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        })
    };
    let one = estimate(1);
    for threads in [2, 7, 32] {
        assert!(one == estimate(threads), "the estimates differ between 1 and {threads} threads");
    }
}
