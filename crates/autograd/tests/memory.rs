//! Memory stays flat across training steps: 10,000 steps, each building a tape, running
//! backward and updating parameters, leave no more heap in use than the first hundred did.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use autograd::Graph;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::Tensor;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
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
fn ten_thousand_steps_leave_memory_flat() {
    // Start rayon's worker threads now: they allocate their own state when they start.
    rayon::broadcast(|_| ());
    let mut rng = StdRng::seed_from_u64(0);
    let mut w = Tensor::<f32>::randn(&[8, 16], &mut rng).mul_scalar(0.1);
    let mut b = Tensor::<f32>::zeros(&[8]);
    let x = Tensor::<f32>::randn(&[4, 16], &mut rng);
    let y = Tensor::<f32>::rand_uniform(&[4, 8], 0.0, 1.0, &mut rng);
    let mut graph = Graph::<f32>::new();
    let mut live_after_warmup = 0;
    for step in 0..10_000 {
        let loss = {
            let (wv, bv) = (graph.param(w.clone()), graph.param(b.clone()));
            let logits = graph.constant(x.clone()).matmul(wv.t()) + bv;
            let loss = logits.bce_with_logits(graph.constant(y.clone())).mean();
            let mut grads = loss.backward();
            w.axpy(-0.1, &grads.take(wv).unwrap());
            b.axpy(-0.1, &grads.take(bv).unwrap());
            loss.value().item()
        };
        graph.reset();
        assert!(loss.is_finite());
        if step == 100 {
            live_after_warmup = LIVE.load(Ordering::Relaxed);
        }
    }
    let live_end = LIVE.load(Ordering::Relaxed);
    assert!(
        live_end <= live_after_warmup,
        "heap in use grew from {live_after_warmup} to {live_end} bytes over 9,900 steps"
    );
}
