//! Heap use of the training step in steady state, counted with a counting allocator: after
//! warm-up a step allocates nothing but matrixmultiply's packing buffers (one per GEMM call,
//! which the GEMM makes itself and [`tensor::internals::gemm_calls`] counts) and what its one
//! [`tensor::with_workers_awake`] call allocates (rayon's broadcast to the workers where they
//! spin, the same count every call), and the memory in use after a step is the same every
//! step. Every op's output and scratch buffer comes from the
//! storage pool (`crates/tensor/src/pool.rs`), the gradient store from the tape, the
//! parameters' lists from inline slots. Checked for the default model at batch 128, Burda
//! et al.'s at batch 20 (ELBO and IWAE k = 5) and the convolutional model, on pools of 1,
//! 2 and 4 threads.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::Tensor;
use vae::config::ConvNet;
use vae::elbo::Objective;
use vae::train::{TrainConfig, Trainer};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static COUNT: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        COUNT.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Per measured step: allocations other than the GEMM's, and the bytes in use after it.
fn measure(config: TrainConfig, pool: &rayon::ThreadPool, steps: usize) -> (Vec<isize>, Vec<isize>) {
    pool.install(|| {
        let mut rng = StdRng::seed_from_u64(0);
        let input = config.model.input;
        let batch = config.batch_size;
        let mut trainer = Trainer::new(config);
        let x = Tensor::<f32>::rand_uniform(&[batch, input], 0.0, 1.0, &mut rng).map(f32::round);
        for _ in 0..5 {
            trainer.step(x.clone(), &mut rng).unwrap();
        }
        let count = COUNT.load(Ordering::Relaxed);
        tensor::with_workers_awake(|| ());
        let fork = COUNT.load(Ordering::Relaxed) - count;
        // Room for every measurement up front, so the test itself allocates nothing here.
        let (mut extra, mut live) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
        for _ in 0..steps {
            let (count, gemms) = (COUNT.load(Ordering::Relaxed), tensor::internals::gemm_calls());
            trainer.step(x.clone(), &mut rng).unwrap();
            let allocs = COUNT.load(Ordering::Relaxed) - count;
            extra.push(allocs as isize - (tensor::internals::gemm_calls() - gemms + fork as u64) as isize);
            live.push(LIVE.load(Ordering::Relaxed));
        }
        (extra, live)
    })
}

// One test, so that no other test's allocations land in the counts.
#[test]
fn a_training_step_allocates_nothing_but_the_gemms_packing_buffers() {
    let mut conv = TrainConfig::default();
    conv.model.conv = Some(ConvNet { side: 28, channels: vec![32, 64] }).into();
    conv.model.hidden = vec![];
    let cases = [
        ("default model, batch 128", TrainConfig::default()),
        ("Burda VAE, batch 20", TrainConfig::burda(Objective::ElboMc, 1, 1)),
        ("Burda IWAE k = 5, batch 20", TrainConfig::burda(Objective::Iwae, 5, 1)),
        ("Burda IWAE k = 5, two stochastic layers", TrainConfig::burda(Objective::Iwae, 5, 2)),
        ("convolutional model, batch 128", conv),
    ];
    // The pools live through every case: a dropped pool's threads exit in the background,
    // and the thread-local memory they free would show in the next case's counts.
    let pools =
        [1, 2, 4].map(|threads| rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap());
    for (what, config) in cases {
        for pool in &pools {
            let threads = pool.current_num_threads();
            let (extra, live) = measure(config.clone(), pool, 8);
            println!("{what}, {threads} threads: allocations besides the GEMM's per step {extra:?}");
            assert!(
                extra.iter().all(|&e| e == 0),
                "{what}, {threads} threads: allocations per step {extra:?}"
            );
            assert!(
                live.windows(2).all(|w| w[1] == w[0]),
                "{what}, {threads} threads: memory in use {live:?}"
            );
        }
    }
}
