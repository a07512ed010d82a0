//! Safe code cannot make the crate read outside a storage or compute with a wrapped size.
//!
//! Named cases reproduce the holes an adversarial user finds first (layouts whose last index
//! or element count overflows, products and convolutions of overflowing geometry, the raw
//! GEMM's bounds); the property test throws arbitrary shapes, strides, offsets and storage
//! lengths, overflowing ones among them, at every public operation. Each must end in a
//! value that matches a direct loop, an `Err`, or a panic with a message: never a signal.
//! CI runs this file in release and in debug (where an integer overflow would panic).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use proptest::prelude::*;
use tensor::{Conv2dSpec, ConvWants, Layout, Tensor};

/// The message of a panic, which must exist and say something.
fn panic_message(f: impl FnOnce()) -> String {
    let err = catch(f).expect_err("expected a panic");
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .expect("a panic with a message");
    assert!(!msg.is_empty());
    msg
}

/// Storage of `n` elements `0, 1, 2, …`.
fn storage(n: usize) -> Arc<Vec<f32>> {
    Arc::new((0..n).map(|i| i as f32).collect())
}

#[test]
fn a_layout_whose_last_index_wraps_is_refused() {
    // (9 − 1)·2^61 = 2^64 wraps to 0 unchecked, which would hand the GEMM that row stride.
    let s = 1usize << 61;
    assert!(Layout::try_new(&[9, 1], &[s, 1], 0).is_err());
    let msg = panic_message(|| {
        Layout::new(&[9, 1], &[s, 1], 0);
    });
    assert!(msg.contains("layout"), "{msg}");
    // Strides or offsets past isize, and a rank mismatch, are refused too.
    assert!(Layout::try_new(&[1, 1], &[usize::MAX, 1], 0).is_err());
    assert!(Layout::try_new(&[2], &[1], usize::MAX).is_err());
    assert!(Layout::try_new(&[2, 2], &[1], 0).is_err());
    // A valid layout that reaches past the storage is an error where the two meet.
    let l = Layout::new(&[9, 1], &[2, 1], 0);
    assert!(Tensor::try_from_shared(storage(16), l.clone()).is_err());
    assert!(Tensor::try_from_shared(storage(17), l).is_ok());
}

#[test]
fn element_counts_that_overflow_are_errors_not_zero() {
    let big = 1usize << 40;
    // 2^80 elements wrapped to 0 and summed to 0.0.
    assert!(Layout::try_new(&[big, big], &[0, 0], 0).is_err());
    assert!(Layout::try_contiguous(&[big, big]).is_err());
    assert!(Tensor::<f32>::try_full(&[big, big], 1.0).is_err());
    assert!(Tensor::<f32>::try_from_vec(vec![], &[big, big, 0, big]).is_ok(), "zero elements is fine");
    assert!(Tensor::<f32>::try_from_vec(vec![], &[big, big, big]).is_err());
    let msg = panic_message(|| {
        Tensor::<f32>::zeros(&[big, big]);
    });
    assert!(msg.contains("overflows"), "{msg}");
    panic_message(|| {
        Tensor::<f64>::eye(1 << 33);
    });
    // Views and broadcasts that would overflow.
    let one = Tensor::<f32>::ones(&[1, 1]);
    assert!(one.try_broadcast_to(&[big, big]).is_err());
    assert!(Tensor::<f32>::zeros(&[0]).try_reshape(&[big, big, big, 0]).is_ok());
    assert!(Tensor::<f32>::zeros(&[1]).try_reshape(&[big, big, 0, big]).is_err());
    assert!(Tensor::<f32>::zeros(&[0]).try_reshape(&[big, big]).is_err());
}

/// A broadcast that fits is fine, and allocating it is an error, not an abort. (Miri
/// cannot model a failed allocation of terabytes.)
#[test]
#[cfg_attr(miri, ignore)]
fn memory_that_cannot_be_had_is_a_panic_with_a_message() {
    let wide = Tensor::<f32>::ones(&[1, 1]).broadcast_to(&[1 << 40, 1]);
    let msg = panic_message(|| {
        wide.to_vec();
    });
    assert!(msg.contains("allocate"), "{msg}");
    assert!(Tensor::<f64>::try_full(&[1 << 40, 16], 0.0).is_err());
}

#[test]
fn products_of_overflowing_shapes_are_errors() {
    let big = 1usize << 40;
    // Empty operands whose product has 2^80 elements.
    let a = Tensor::<f32>::zeros(&[1, 0]).broadcast_to(&[big, 0]);
    let b = Tensor::<f32>::zeros(&[0, 1]).broadcast_to(&[0, big]);
    assert!(a.try_matmul(&b).is_err());
    // Batched: the batch axes broadcast to an overflowing count.
    let a = Tensor::<f32>::zeros(&[1, 1, 2, 0]).broadcast_to(&[big, 1, 2, 0]);
    let b = Tensor::<f32>::zeros(&[1, 1, 0, 2]).broadcast_to(&[1, big, 0, 2]);
    assert!(a.try_matmul(&b).is_err());
}

#[test]
fn the_raw_gemm_checks_its_bounds_without_wrapping() {
    let (a, b) = (vec![1.0f32; 4], vec![1.0f32; 4]);
    let mut c = vec![0.0f32; 4];
    // m·n wraps to 0, which an unchecked product would let pass the output check.
    panic_message(|| {
        let mut c = vec![0.0f32; 4];
        tensor::internals::gemm_slices(1 << 32, 1, 1 << 32, 1.0, (&a, 1, 1), (&b, 1, 1), 0.0, &mut c);
    });
    // A row stride whose last index wraps back inside the slice.
    panic_message(|| {
        let mut c = vec![0.0f32; 4];
        tensor::internals::gemm_slices(9, 1, 1, 1.0, (&a, 1 << 61, 1), (&b, 1, 1), 0.0, &mut c);
    });
    panic_message(|| {
        let mut c = vec![0.0f32; 4];
        tensor::internals::gemm_slices(2, 2, 2, 1.0, (&a, 2, 1), (&b, 3, 1), 0.0, &mut c);
    });
    tensor::internals::gemm_slices(2, 2, 2, 1.0, (&a, 2, 1), (&b, 2, 1), 0.0, &mut c);
    assert_eq!(c, vec![2.0; 4]);
}

#[test]
fn convolution_geometry_near_the_limits_is_an_error() {
    let x = Tensor::<f32>::ones(&[1, 1, 3, 3]);
    let w = Tensor::<f32>::ones(&[1, 1, 2, 2]);
    let huge = usize::MAX / 2;
    for spec in [
        Conv2dSpec::new(1, huge),
        Conv2dSpec::new(1, usize::MAX),
        Conv2dSpec::new(usize::MAX, 0),
        Conv2dSpec::new(1, 0).with_dilation(usize::MAX),
        Conv2dSpec::new(1, 1 << 40),
    ] {
        assert!(x.try_conv2d(&w, None, spec).is_err(), "{spec:?}");
        assert!(x.try_conv_transpose2d(&w, None, spec, [0, 0]).is_err(), "{spec:?}");
    }
    // A stride past the input is a valid convolution with one output pixel.
    let y = x.try_conv2d(&w, None, Conv2dSpec::new(usize::MAX, 0)).map(|y| y.to_vec());
    assert!(y.is_err() || y == Ok(vec![4.0]));
    assert_eq!(x.conv2d(&w, None, Conv2dSpec::new(1 << 20, 0)).to_vec(), vec![4.0]);
}

#[test]
fn clamp_keeps_nan_and_checks_its_bounds() {
    let t = Tensor::<f32>::from_vec(vec![f32::NAN, -3.0, 0.5, 7.0], &[4]);
    let c = t.clamp(0.0, 1.0).to_vec();
    assert!(c[0].is_nan(), "NaN became {}", c[0]);
    assert_eq!(&c[1..], &[0.0, 0.5, 1.0]);
    assert!(t.try_clamp(1.0, 0.0).is_err());
    assert!(t.try_clamp(f32::NAN, 1.0).is_err());
}

// ------------------------------------------------------------------ the property test

/// Extents: small ones the test computes with, and ones whose products overflow or would
/// need terabytes (never one a machine could allocate and then fill for minutes).
fn extent() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 0usize..6,
        1 => prop::sample::select(vec![1usize << 40, 1 << 52, (1 << 62) + 1, isize::MAX as usize, usize::MAX]),
    ]
}

/// Strides and offsets: small, zero (broadcast), and huge.
fn step() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 0usize..12,
        1 => prop::sample::select(vec![1usize << 31, 1 << 61, isize::MAX as usize, usize::MAX - 3, usize::MAX]),
    ]
}

#[derive(Debug, Clone)]
struct Raw {
    shape: Vec<usize>,
    strides: Vec<usize>,
    offset: usize,
    storage: usize,
    stray_stride: bool,
}

fn raw() -> impl Strategy<Value = Raw> {
    (0usize..=4)
        .prop_flat_map(|rank| {
            (
                prop::collection::vec(extent(), rank),
                prop::collection::vec(step(), rank),
                step(),
                prop_oneof![0usize..400, Just(0usize)],
                any::<bool>(),
            )
        })
        .prop_map(|(shape, strides, offset, storage, stray_stride)| Raw {
            shape,
            strides,
            offset,
            storage,
            stray_stride,
        })
}

/// The elements of `t` in row-major order by direct indexing (the reference for every
/// kernel's strided walk).
fn direct(t: &Tensor<f32>) -> Vec<f32> {
    let shape = t.shape().to_vec();
    let mut idx = vec![0usize; shape.len()];
    let mut out = Vec::with_capacity(t.len());
    for _ in 0..t.len() {
        out.push(t.get(&idx).expect("in range"));
        for a in (0..idx.len()).rev() {
            idx[a] += 1;
            if idx[a] < shape[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    out
}

thread_local! {
    /// Set while a panic is expected: the hook then leaves it unprinted (the property test
    /// expects thousands).
    static EXPECTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs a panic hook that prints only the panics nobody expected.
fn quiet_panics() {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !EXPECTED.with(|e| e.get()) {
                default(info)
            }
        }))
    });
}

/// `catch_unwind` with the panic hook quiet.
fn catch<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    quiet_panics();
    EXPECTED.with(|e| e.set(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    EXPECTED.with(|e| e.set(false));
    r
}

/// Runs `f`, which may return normally or panic with a message, but nothing else.
fn either(f: impl FnOnce()) {
    if let Err(err) = catch(f) {
        assert!(
            err.downcast_ref::<String>().is_some() || err.downcast_ref::<&str>().is_some(),
            "a panic without a message"
        );
    }
}

/// Every public operation on a valid tensor `t` of few elements, checked against direct
/// loops where there is one.
fn exercise(t: &Tensor<f32>, aux: usize) {
    let want = direct(t);
    assert_eq!(t.to_vec(), want);
    assert_eq!(t.contiguous().to_vec(), want);
    assert_eq!(t.map(|x| x + 1.0).to_vec(), want.iter().map(|x| x + 1.0).collect::<Vec<_>>());
    assert_eq!((t + t).to_vec(), want.iter().map(|x| x + x).collect::<Vec<_>>());
    assert_eq!(t.clamp(1.0, 4.0).to_vec(), want.iter().map(|x| x.clamp(1.0, 4.0)).collect::<Vec<_>>());
    let total: f64 = want.iter().map(|&x| x as f64).sum();
    assert!((t.sum().item() as f64 - total).abs() <= 1e-3 * total.abs().max(1.0));
    let mut owned = t.clone();
    owned.add_assign_t(t);
    assert_eq!(owned.to_vec(), want.iter().map(|x| x + x).collect::<Vec<_>>());
    for axis in 0..t.rank() + 1 {
        let r = t.try_sum_axis(axis, aux.is_multiple_of(2));
        assert_eq!(r.is_ok(), axis < t.rank());
        either(|| drop(t.max_axis(axis, false)));
        either(|| drop(t.logsumexp_axis(axis, true)));
        for (start, len) in [(0, 1), (1, aux), (aux, usize::MAX), (usize::MAX, 2)] {
            if let Ok(v) = t.try_narrow(axis, start, len) {
                assert_eq!(v.to_vec(), direct(&v));
            }
        }
        if let Ok(v) = t.try_unsqueeze(axis) {
            assert_eq!(v.to_vec(), want);
        }
        if let Ok(v) = t.try_squeeze(axis) {
            assert_eq!(v.to_vec(), want);
        }
        if let Ok(v) = t.try_transpose(axis, aux % (t.rank() + 1)) {
            assert_eq!(v.to_vec(), direct(&v));
        }
    }
    let perm: Vec<usize> = (0..t.rank()).rev().collect();
    assert_eq!(t.permute(&perm).to_vec(), direct(&t.permute(&perm)));
    for extra in [1usize, 3, 1 << 40] {
        let shape: Vec<usize> = std::iter::once(extra).chain(t.shape().iter().copied()).collect();
        if let Ok(b) = t.try_broadcast_to(&shape) {
            either(|| assert_eq!(b.to_vec(), direct(&b)));
        }
    }
    for shape in [vec![t.len()], vec![1, t.len()], vec![usize::MAX, 2], vec![0, usize::MAX]] {
        if let Ok(r) = t.contiguous().try_reshape(&shape) {
            assert_eq!(r.to_vec(), want);
        }
    }
    if t.rank() >= 1 {
        let last = t.shape()[t.rank() - 1];
        let row = Tensor::<f32>::arange(last);
        assert!(t.try_zip_with(&row, |a, b| a * b).is_ok());
        let _ = t.zip_sum_last(t, |a, b| a * b);
    }
    if t.rank() >= 2 {
        // The product of `t` with its own transpose, reading both through their strides.
        let (m, k) = (t.shape()[t.rank() - 2], t.shape()[t.rank() - 1]);
        let p = t.matmul(&t.t());
        let (pv, tv) = (p.to_vec(), direct(t));
        let batches = tv.len() / (m * k).max(1);
        for bt in 0..batches {
            for i in 0..m {
                for j in 0..m {
                    let dot: f32 =
                        (0..k).map(|l| tv[bt * m * k + i * k + l] * tv[bt * m * k + j * k + l]).sum();
                    let got = pv[bt * m * m + i * m + j];
                    assert!((got - dot).abs() <= 1e-3 * dot.abs().max(1.0), "{got} vs {dot}");
                }
            }
        }
        let mut acc = p.clone();
        acc.matmul_acc(1.0, t, &t.t(), 1.0);
        for (got, want) in acc.to_vec().iter().zip(&pv) {
            assert!((got - 2.0 * want).abs() <= 1e-3 * want.abs().max(1.0), "{got} vs 2·{want}");
        }
    }
    if t.rank() == 4 {
        let c = t.shape()[1];
        let w = Tensor::<f32>::ones(&[2, c, 1 + aux % 2, 1]);
        for spec in [Conv2dSpec::new(1, 0), Conv2dSpec::new(1 + aux, aux), Conv2dSpec::new(2, usize::MAX / 3)]
        {
            if let Ok(y) = t.try_conv2d(&w, None, spec) {
                let wt = Tensor::<f32>::ones(&[c, 2, 1, 1 + aux % 2]);
                let _ = t.try_conv_transpose2d(&wt, None, spec, [0, 0]);
                let all = ConvWants { input: true, weight: true, bias: true };
                let g = t.conv2d_backward(&w, &y, spec, all, None).expect("the forward's geometry");
                assert_eq!(g.input.expect("asked for").shape(), t.shape());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn raw_parts_give_a_value_an_error_or_a_panic_with_a_message(raw in raw(), aux in 0usize..4) {
        let mut strides = raw.strides.clone();
        if raw.stray_stride && !strides.is_empty() {
            strides[0] = strides[0].wrapping_mul(3);
        }
        let layout = match Layout::try_new(&raw.shape, &strides, raw.offset) {
            Ok(l) => l,
            Err(_) => {
                panic_message(|| { Layout::new(&raw.shape, &strides, raw.offset); });
                return Ok(());
            }
        };
        let t = match Tensor::try_from_shared(storage(raw.storage), layout.clone()) {
            Ok(t) => t,
            Err(_) => {
                prop_assert!(layout.min_storage_len() > raw.storage);
                return Ok(());
            }
        };
        prop_assert!(layout.min_storage_len() <= raw.storage);
        if t.shape().iter().all(|&d| d <= 4096) {
            exercise(&t, aux);
        } else {
            // Billions of elements (or none) behind a few stored ones: every operation that
            // would materialize them says it cannot, or has nothing to do.
            either(|| drop(t.to_vec()));
            either(|| drop(t.sum()));
            either(|| drop(t.exp()));
            either(|| drop(t.contiguous()));
            either(|| drop(&t + &t));
            either(|| drop(t.clamp(0.0, 1.0)));
            for axis in 0..t.rank() {
                either(|| drop(t.try_sum_axis(axis, false)));
                either(|| drop(t.max_axis(axis, true)));
                either(|| drop(t.unsqueeze(axis).t()));
            }
            if t.rank() >= 2 && t.is_empty() {
                either(|| drop(t.matmul(&t.t())));
            }
            if t.rank() == 4 {
                let w = Tensor::<f32>::ones(&[1, t.shape()[1].min(3), 1, 1]);
                either(|| drop(t.try_conv2d(&w, None, Conv2dSpec::new(1, 1))));
            }
        }
    }
}
