//! Everything that depends on the CPU's vector instructions, and the crate's only `unsafe`
//! code: which instruction set this CPU runs ([`Path`], detected at run time, so one
//! binary runs on any x86-64 and uses AVX2 or AVX-512 where the CPU has them), loops
//! compiled for it ([`vectorized`]), and the matrix products ([`matmul`]) with their
//! kernels of our own.
//!
//! The crate is built for the target's baseline (SSE2 on x86-64). A loop that should run
//! wider is a [`VectorLoop`], which [`vectorized`] runs inside a function compiled with the
//! detected features; the loop is inlined there and vectorized for them. Rust
//! never fuses a multiply and an add on its own, so a loop's arithmetic, and its bits, are
//! the same on every path: only the width of the instructions differs (tested in
//! `tests/paths.rs`).

pub(crate) mod matmul;

use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction set the kernels run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Path {
    /// The target's baseline: SSE2 on x86-64, NEON on aarch64. Under Miri, the only path.
    Portable,
    /// AVX2 with FMA (x86-64-v3: Intel Haswell, AMD Zen and later).
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX-512F.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

/// The widest path [`Path::detect`] may choose, as `Path as u8` (tests lower it to compare
/// the paths; every path gives the same bits, so lowering it never changes a result).
static LIMIT: AtomicU8 = AtomicU8::new(u8::MAX);

impl Path {
    /// Every path, the widest first.
    const ALL: &[Path] = &[
        #[cfg(target_arch = "x86_64")]
        Path::Avx512,
        #[cfg(target_arch = "x86_64")]
        Path::Avx2,
        Path::Portable,
    ];

    /// Whether this CPU runs the path (under Miri, only the portable one).
    fn runs(self) -> bool {
        match self {
            Path::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => {
                !cfg!(miri)
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 => {
                !cfg!(miri)
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
        }
    }

    /// The widest path this CPU runs (at most the limit set by [`limit`]). The feature
    /// checks read bits std caches on first use.
    #[inline]
    pub fn detect() -> Path {
        let limit = LIMIT.load(Ordering::Relaxed);
        Path::ALL.iter().copied().find(|&p| p as u8 <= limit && p.runs()).unwrap_or(Path::Portable)
    }

    /// Every path this CPU runs, the portable one (the reference) first.
    #[cfg_attr(not(any(test, feature = "internals")), allow(dead_code))]
    pub fn available() -> Vec<Path> {
        Path::ALL.iter().rev().copied().filter(|p| p.runs()).collect()
    }
}

/// Caps the paths the crate chooses from at `widest` (every path when `None`), for the whole
/// process. Results do not depend on it; tests and benchmarks use it to run each path.
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub fn limit(widest: Option<Path>) {
    LIMIT.store(widest.map_or(u8::MAX, |p| p as u8), Ordering::Relaxed);
}

/// A loop to run compiled for the CPU's vector instructions: [`vectorized`] calls
/// [`run`](Self::run) inside a function compiled for them.
///
/// Mark `run` `#[inline(always)]`: the instructions a function may use are fixed where it
/// is compiled, so the loop gets them only by being inlined into [`vectorized`]'s function
/// for the path (always-inlining a baseline function into a wider one is allowed; the
/// compiler's own heuristics often decline a loop-sized closure there, which is why this is
/// a trait and not a closure). What `run` calls without inlining runs as compiled for the
/// baseline.
pub trait VectorLoop {
    /// What the loop returns.
    type Output;
    /// The loop.
    fn run(self) -> Self::Output;
}

/// Runs `work` inside a function compiled for the widest instruction set this CPU has
/// (`Path::detect`): AVX2 and FMA or AVX-512 on x86-64 CPUs that have them, the
/// target's baseline otherwise. The result is the same bits on every path (Rust does not
/// fuse or reorder floating-point operations to use wider vectors); only the speed changes.
#[inline(always)]
pub fn vectorized<L: VectorLoop>(work: L) -> L::Output {
    match Path::detect() {
        Path::Portable => work.run(),
        // SAFETY: `detect` chose this path only on a CPU with AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 => unsafe { x86::with_avx2(work) },
        // SAFETY: `detect` chose this path only on a CPU with AVX-512F, AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 => unsafe { x86::with_avx512(work) },
    }
}

/// GFLOP/s of `threads` threads each running independent f32 FMA chains for a while, at
/// once: the FMA peak this machine gives (AVX-512 where the CPU has it, else AVX2). `None`
/// off x86-64 or without FMA. What a product's GFLOP/s is read against.
#[cfg(feature = "internals")]
pub fn fma_peak(threads: usize) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        const CHAINS: usize = 12;
        const ROUNDS: usize = 50_000_000;
        // 12 chains cover the FMA latency (4 cycles) times the FMA pipes (2) with room.
        #[target_feature(enable = "avx512f")]
        fn zmm() -> (f32, usize) {
            let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
            let mut acc = [_mm512_setzero_ps(); CHAINS];
            for _ in 0..ROUNDS {
                for c in &mut acc {
                    *c = _mm512_fmadd_ps(*c, a, b);
                }
            }
            (acc.iter().map(|&c| _mm512_reduce_add_ps(c)).sum(), ROUNDS * CHAINS * 32)
        }
        #[target_feature(enable = "avx2,fma")]
        fn ymm() -> (f32, usize) {
            let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
            let mut acc = [_mm256_setzero_ps(); CHAINS];
            for _ in 0..ROUNDS {
                for c in &mut acc {
                    *c = _mm256_fmadd_ps(*c, a, b);
                }
            }
            let mut lanes = [0f32; 8];
            let sum = acc.iter().fold(_mm256_setzero_ps(), |s, &c| _mm256_add_ps(s, c));
            // SAFETY: `lanes` holds the 8 floats the store writes.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
            (lanes.iter().sum(), ROUNDS * CHAINS * 16)
        }
        let run: fn() -> (f32, usize) = if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked above).
            || unsafe { zmm() }
        } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA (checked above).
            || unsafe { ymm() }
        } else {
            return None;
        };
        let start = std::time::Instant::now();
        let flops: usize = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads).map(|_| s.spawn(|| std::hint::black_box(run()).1)).collect();
            workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
        });
        Some(flops as f64 / start.elapsed().as_secs_f64() / 1e9)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = threads;
        None
    }
}

/// GB/s that `threads` threads reach over Adam's memory traffic for `n` parameters (each
/// thread its share): per element, read the parameter, both moments and the gradient and
/// write the first three back, 28 bytes of `f32`, with arithmetic that costs less than the
/// traffic (no square root or division). At a model's parameter count this is the rate
/// against which to read its optimizer step: the arrays sit in whichever cache level they
/// fit, as Adam's do.
#[cfg(feature = "internals")]
pub fn adam_bandwidth(n: usize, threads: usize) -> f64 {
    struct Pass<'a>(&'a mut [f32], &'a mut [f32], &'a mut [f32], &'a [f32]);
    impl VectorLoop for Pass<'_> {
        type Output = ();
        #[inline(always)]
        fn run(self) {
            let Pass(p, m, v, g) = self;
            for (((p, m), v), &g) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
                *m = 0.9 * *m + g;
                *v = 0.99 * *v + g * g;
                *p -= 1e-3 * *m + 1e-4 * *v;
            }
        }
    }
    let threads = threads.max(1);
    let share = n.div_ceil(threads).max(1);
    let passes = (200_000_000 / share).clamp(3, 100_000);
    let start = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(move || {
                let (mut p, mut m, mut v) = (vec![0.5f32; share], vec![0f32; share], vec![0f32; share]);
                let g = vec![1e-3f32; share];
                for _ in 0..passes {
                    vectorized(Pass(&mut p, &mut m, &mut v, &g));
                }
                std::hint::black_box((&p, &m, &v));
            });
        }
    });
    (28 * share * threads * passes) as f64 / start.elapsed().as_secs_f64() / 1e9
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::VectorLoop;

    /// `work.run()`, with AVX2 and FMA enabled for the code inlined into this function.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn with_avx2<L: VectorLoop>(work: L) -> L::Output {
        work.run()
    }

    /// `work.run()`, with AVX-512F (and AVX2 and FMA) enabled for the code inlined into
    /// this function.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) fn with_avx512<L: VectorLoop>(work: L) -> L::Output {
        work.run()
    }
}
