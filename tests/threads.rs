//! The whole training step gives the same bits at any thread count: a few steps of the
//! default model (large enough that every product and kernel splits) on pools of 1, 2 and 7
//! threads leave bit-identical parameters, optimizer state and losses.

use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::Tensor;
use vae::train::{TrainConfig, Trainer};

/// Losses and the bits of every parameter after four steps on a pool of `threads` threads.
fn train_on(threads: usize) -> (Vec<u64>, Vec<Vec<u32>>) {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        assert_eq!(rayon::current_num_threads(), threads);
        let mut rng = StdRng::seed_from_u64(3);
        let mut trainer = Trainer::new(TrainConfig::default());
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

#[test]
fn a_training_step_gives_the_same_bits_on_1_2_and_7_threads() {
    let one = train_on(1);
    for threads in [2, 7] {
        let other = train_on(threads);
        assert!(one.0 == other.0, "losses differ between 1 and {threads} threads");
        assert!(one.1 == other.1, "parameters differ between 1 and {threads} threads");
    }
}
