//! Heap use of the training step in steady state, counted with a counting allocator: the
//! number of allocations per step is the same every step, and after warm-up the memory in
//! use after a step is exactly the same every step. (Each op still allocates its output;
//! the count is printed.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::Tensor;
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

#[test]
fn a_training_step_allocates_the_same_every_step_and_frees_it() {
    rayon::broadcast(|_| ());
    let mut rng = StdRng::seed_from_u64(0);
    let mut trainer = Trainer::new(TrainConfig::default());
    let x = Tensor::<f32>::rand_uniform(&[128, 784], 0.0, 1.0, &mut rng);
    for _ in 0..5 {
        trainer.step(x.clone(), &mut rng).unwrap();
    }
    // Room for every measurement up front, so the test itself allocates nothing in the loop.
    let (mut counts, mut live) = (Vec::with_capacity(20), Vec::with_capacity(20));
    for _ in 0..20 {
        let before = COUNT.load(Ordering::Relaxed);
        trainer.step(x.clone(), &mut rng).unwrap();
        counts.push(COUNT.load(Ordering::Relaxed) - before);
        live.push(LIVE.load(Ordering::Relaxed));
    }
    println!("allocations per training step (batch 128, default model): {:?}", &counts[..3]);
    let (lo, hi) = (*counts.iter().min().unwrap(), *counts.iter().max().unwrap());
    // The count may differ by a few with rayon's scheduling, never grow.
    assert!(hi - lo <= 8, "allocations per step vary: {counts:?}");
    assert!(live.windows(2).all(|w| w[1] == w[0]), "memory in use changes between steps: {live:?}");
}
