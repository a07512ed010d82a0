//! Every kernel against a slow, obviously correct index-loop reference, over random shapes
//! (including 0- and 1-sized axes) and non-contiguous inputs (transposed, narrowed,
//! broadcast).

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tensor::Tensor;

/// All multi-indices of `shape` in row-major order.
fn indices(shape: &[usize]) -> Vec<Vec<usize>> {
    let n: usize = shape.iter().product();
    (0..n)
        .map(|mut flat| {
            let mut idx = vec![0; shape.len()];
            for ax in (0..shape.len()).rev() {
                idx[ax] = flat % shape[ax];
                flat /= shape[ax];
            }
            idx
        })
        .collect()
}

/// A tensor of logical `shape` presented in one of four layouts.
fn presented(shape: &[usize], kind: u8, rng: &mut StdRng) -> Tensor<f64> {
    let rank = shape.len();
    match kind % 4 {
        // contiguous
        0 => Tensor::randn(shape, rng),
        // transposed: built in reversed order and permuted back
        1 => {
            let rev: Vec<usize> = shape.iter().rev().copied().collect();
            let perm: Vec<usize> = (0..rank).rev().collect();
            Tensor::randn(&rev, rng).permute(&perm)
        }
        // narrowed out of a larger tensor on the first axis
        2 if rank > 0 => {
            let mut big = shape.to_vec();
            big[0] += 3;
            Tensor::randn(&big, rng).narrow(0, 2, shape[0])
        }
        // broadcast from extent 1 on the last axis
        _ if rank > 0 => {
            let mut small = shape.to_vec();
            small[rank - 1] = 1;
            Tensor::randn(&small, rng).broadcast_to(shape)
        }
        _ => Tensor::randn(shape, rng),
    }
}

type BinFn = fn(f64, f64) -> f64;

fn shape_strategy(max_rank: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![Just(0usize), Just(1), 2..6usize], 0..=max_rank)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + a.abs().max(b.abs())) || (a.is_nan() && b.is_nan()) || a == b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn unary_matches_reference(shape in shape_strategy(4), kind in 0u8..4, seed in 0u64..1000) {
        let mut rng = StdRng::seed_from_u64(seed);
        let x = presented(&shape, kind, &mut rng);
        for (name, got, f) in [
            ("exp", x.exp(), f64::exp as fn(f64) -> f64),
            ("neg", -&x, |v: f64| -v),
            ("relu", x.relu(), |v: f64| v.max(0.0)),
            ("sigmoid", x.sigmoid(), |v: f64| 1.0 / (1.0 + (-v).exp())),
            ("softplus", x.softplus(), |v: f64| (1.0 + v.exp()).ln()),
            ("tanh", x.tanh(), f64::tanh),
            ("abs", x.abs(), f64::abs),
            ("square", x.square(), |v: f64| v * v),
            ("recip", x.recip(), f64::recip),
            ("ln", x.abs().ln(), |v: f64| v.abs().ln()),
            ("sqrt", x.abs().sqrt(), |v: f64| v.abs().sqrt()),
            ("clamp", x.clamp(-0.5, 0.25), |v: f64| v.clamp(-0.5, 0.25)),
            ("add_scalar", x.add_scalar(1.5), |v: f64| v + 1.5),
            ("mul_scalar", x.mul_scalar(-2.5), |v: f64| v * -2.5),
        ] {
            prop_assert_eq!(got.shape(), x.shape());
            for idx in indices(&shape) {
                let (g, w) = (got.get(&idx).unwrap(), f(x.get(&idx).unwrap()));
                prop_assert!((g - w).abs() <= 1e-12 * (1.0 + w.abs()), "{} at {:?}: {} vs {}", name, idx, g, w);
            }
        }
    }

    #[test]
    fn binary_broadcast_matches_reference(
        shape in shape_strategy(4),
        mask in prop::collection::vec(any::<bool>(), 4),
        drop_lead in 0usize..3,
        ka in 0u8..4, kb in 0u8..4, seed in 0u64..1000,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        // b's shape: some axes set to 1, some leading axes dropped, so it broadcasts to a's.
        let bshape: Vec<usize> = shape.iter().enumerate()
            .map(|(i, &d)| if mask[i] { 1 } else { d })
            .skip(drop_lead.min(shape.len()))
            .collect();
        let a = presented(&shape, ka, &mut rng);
        let b = presented(&bshape, kb, &mut rng).add_scalar(3.0);
        let lead = shape.len() - bshape.len();
        let bidx = |idx: &[usize]| -> Vec<usize> {
            idx[lead..].iter().zip(&bshape).map(|(&i, &d)| if d == 1 { 0 } else { i }).collect()
        };
        let ops: [(&str, Tensor<f64>, BinFn); 11] = [
            ("add", &a + &b, |x, y| x + y),
            ("sub", &a - &b, |x, y| x - y),
            ("mul", &a * &b, |x, y| x * y),
            ("div", &a / &b, |x, y| x / y),
            ("maximum", a.maximum(&b), f64::max),
            ("minimum", a.minimum(&b), f64::min),
            ("gt", a.gt(&b), |x, y| if x > y { 1.0 } else { 0.0 }),
            ("ge", a.ge(&b), |x, y| if x >= y { 1.0 } else { 0.0 }),
            ("lt", a.lt(&b), |x, y| if x < y { 1.0 } else { 0.0 }),
            ("le", a.le(&b), |x, y| if x <= y { 1.0 } else { 0.0 }),
            // b is a shifted draw of its own, so equality needs a value from a itself.
            ("eq_mask", a.eq_mask(&a.maximum(&b)), |x, y| if x >= y { 1.0 } else { 0.0 }),
        ];
        for (name, got, f) in ops {
            prop_assert_eq!(got.shape(), &shape[..]);
            for idx in indices(&shape) {
                let w = f(a.get(&idx).unwrap(), b.get(&bidx(&idx)).unwrap());
                prop_assert!(close(got.get(&idx).unwrap(), w), "{} at {:?}", name, idx);
            }
            // In place, with the right-hand side broadcast (and possibly strided).
            let mut inplace = a.clone();
            inplace.zip_inplace(&b, f);
            prop_assert_eq!(inplace.to_vec(), got.to_vec(), "{} in place", name);
            // Broadcasting is symmetric in shape.
            let ba = b.try_add(&a).unwrap();
            prop_assert_eq!(ba.shape(), &shape[..]);
        }
    }

    #[test]
    fn reductions_match_reference(shape in shape_strategy(3), kind in 0u8..4, seed in 0u64..1000, keep in any::<bool>()) {
        let mut rng = StdRng::seed_from_u64(seed);
        let x = presented(&shape, kind, &mut rng);
        let all = indices(&shape);
        let total: f64 = all.iter().map(|i| x.get(i).unwrap()).sum();
        if !shape.is_empty() {
            let fused = x.zip_sum_last(&x, |a, b| a * b + 1.0);
            let mut lead = shape.clone();
            let last = lead.pop().unwrap();
            prop_assert_eq!(fused.shape(), &lead[..]);
            for idx in indices(&lead) {
                let want: f64 = (0..last).map(|j| { let mut i = idx.clone(); i.push(j); let v = x.get(&i).unwrap(); v * v + 1.0 }).sum();
                prop_assert!((fused.get(&idx).unwrap() - want).abs() < 1e-10 * (1.0 + want.abs()));
            }
        }
        prop_assert!(close(x.sum().item(), total));
        let kept = x.sum_all(true);
        prop_assert_eq!(kept.shape(), &vec![1; shape.len()][..]);
        prop_assert!(close(kept.item(), total));
        prop_assert_eq!(x.max_all(false).rank(), 0);
        let mx = all.iter().map(|i| x.get(i).unwrap()).fold(f64::NEG_INFINITY, f64::max);
        prop_assert!(close(x.max().item(), mx));
        let lse = all.iter().map(|i| (x.get(i).unwrap() - mx).exp()).sum::<f64>().ln() + mx;
        if !shape.contains(&0) {
            prop_assert!((x.logsumexp().item() - lse).abs() < 1e-10);
        }
        for axis in 0..shape.len() {
            let s = x.sum_axis(axis, keep);
            let mean = x.mean_axis(axis, keep);
            let m = x.max_axis(axis, keep);
            let l = x.logsumexp_axis(axis, keep);
            let mut out_shape = shape.clone();
            if keep { out_shape[axis] = 1 } else { out_shape.remove(axis); }
            prop_assert_eq!(s.shape(), &out_shape[..]);
            for oidx in indices(&out_shape) {
                let mut full = oidx.clone();
                if !keep { full.insert(axis, 0) }
                let vals: Vec<f64> = (0..shape[axis]).map(|j| { full[axis] = j; x.get(&full).unwrap() }).collect();
                let want_sum: f64 = vals.iter().sum();
                let want_max = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                prop_assert!(close(s.get(&oidx).unwrap(), want_sum));
                if !vals.is_empty() {
                    let want_mean = want_sum / vals.len() as f64;
                    prop_assert!((mean.get(&oidx).unwrap() - want_mean).abs() < 1e-12 * (1.0 + want_mean.abs()));
                }
                prop_assert!(close(m.get(&oidx).unwrap(), want_max));
                if !vals.is_empty() {
                    let want_lse = vals.iter().map(|v| (v - want_max).exp()).sum::<f64>().ln() + want_max;
                    prop_assert!((l.get(&oidx).unwrap() - want_lse).abs() < 1e-10);
                }
            }
        }
    }

    #[test]
    fn sum_to_inverts_broadcast(shape in shape_strategy(3), mask in prop::collection::vec(any::<bool>(), 3), seed in 0u64..100) {
        let mut rng = StdRng::seed_from_u64(seed);
        let small: Vec<usize> = shape.iter().enumerate().map(|(i, &d)| if mask[i] { 1 } else { d }).collect();
        let g = Tensor::<f64>::randn(&shape, &mut rng);
        let s = g.sum_to(&small);
        prop_assert_eq!(s.shape(), &small[..]);
        // <broadcast(v), g> == <v, sum_to(g)> for any v: the adjoint relation.
        let v = Tensor::<f64>::randn(&small, &mut rng);
        let lhs = (&v.broadcast_to(&shape) * &g).sum().item();
        let rhs = (&v * &s).sum().item();
        prop_assert!((lhs - rhs).abs() < 1e-10 * (1.0 + lhs.abs()));
    }

    #[test]
    fn batched_matmul_matches_reference(
        batch in prop::collection::vec(1usize..4, 0..3),
        bcast in any::<bool>(),
        m in 0usize..7, k in 0usize..7, n in 0usize..7,
        ta in any::<bool>(), tb in any::<bool>(), seed in 0u64..1000,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mk = |r: usize, c: usize, t: bool, batch: &[usize], rng: &mut StdRng| {
            let mut s = batch.to_vec();
            if t { s.extend([c, r]); Tensor::<f64>::randn(&s, rng).t() } else { s.extend([r, c]); Tensor::randn(&s, rng) }
        };
        let a = mk(m, k, ta, &batch, &mut rng);
        // Broadcast b's batch: drop its batch axes entirely.
        let bb: Vec<usize> = if bcast { vec![] } else { batch.clone() };
        let b = mk(k, n, tb, &bb, &mut rng);
        let c = a.matmul(&b);
        let mut want_shape = batch.clone();
        want_shape.extend([m, n]);
        prop_assert_eq!(c.shape(), &want_shape[..]);
        for idx in indices(&want_shape) {
            let nb = batch.len();
            let (i, j) = (idx[nb], idx[nb + 1]);
            let mut want = 0.0;
            for p in 0..k {
                let mut ia = idx[..nb].to_vec(); ia.extend([i, p]);
                let mut ib = if bcast { vec![] } else { idx[..nb].to_vec() }; ib.extend([p, j]);
                want += a.get(&ia).unwrap() * b.get(&ib).unwrap();
            }
            prop_assert!((c.get(&idx).unwrap() - want).abs() < 1e-10);
        }
    }
}

/// A pool with four threads, whatever the machine, so that parallel paths really run.
fn four_threads() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap()
}

/// Every combination of row- and column-major A, B and C, in both precisions, at sizes
/// small and large enough to take the parallel path (the last two split by columns and by
/// rows on a four-thread pool).
#[test]
fn matmul_every_major_combination() {
    let sizes = [(130, 70, 90), (64, 257, 31), (40, 600, 200), (300, 200, 90)];
    four_threads().install(|| {
        for &(m, k, n) in &sizes[2..] {
            assert!(m * k * n >= tensor::internals::PAR_MIN_MACS && rayon::current_num_threads() > 1);
        }
        every_major_combination(&sizes)
    });
}

/// The small cases of [`matmul_every_major_combination`], on the calling thread: what Miri
/// runs (`.ci/miri`).
#[test]
fn small_products_every_major_combination() {
    every_major_combination(&[(1, 1, 1), (3, 5, 4), (6, 3, 9)]);
}

fn every_major_combination(sizes: &[(usize, usize, usize)]) {
    let mut rng = StdRng::seed_from_u64(7);
    for &(m, k, n) in sizes {
        for ta in [false, true] {
            for tb in [false, true] {
                for tc in [false, true] {
                    let a64 = if ta {
                        Tensor::<f64>::randn(&[k, m], &mut rng).t()
                    } else {
                        Tensor::randn(&[m, k], &mut rng)
                    };
                    let b64 = if tb {
                        Tensor::<f64>::randn(&[n, k], &mut rng).t()
                    } else {
                        Tensor::randn(&[k, n], &mut rng)
                    };
                    let c0 = if tc {
                        Tensor::<f64>::randn(&[n, m], &mut rng).t()
                    } else {
                        Tensor::randn(&[m, n], &mut rng)
                    };
                    let (alpha, beta) = (0.5, -1.5);
                    let mut c = c0.clone();
                    c.matmul_acc(alpha, &a64, &b64, beta);
                    let mut c32 = c0.cast::<f32>();
                    c32.matmul_acc(alpha as f32, &a64.cast(), &b64.cast(), beta as f32);
                    for i in 0..m {
                        for j in 0..n {
                            let dot: f64 =
                                (0..k).map(|p| a64.get(&[i, p]).unwrap() * b64.get(&[p, j]).unwrap()).sum();
                            let want = alpha * dot + beta * c0.get(&[i, j]).unwrap();
                            let got = c.get(&[i, j]).unwrap();
                            assert!(
                                (got - want).abs() < 1e-10 * (1.0 + want.abs()),
                                "f64 {m}x{k}x{n} {ta}{tb}{tc}"
                            );
                            let got32 = c32.get(&[i, j]).unwrap() as f64;
                            assert!(
                                (got32 - want).abs() < 1e-3 * (1.0 + want.abs()) * (k as f64).sqrt(),
                                "f32 {m}x{k}x{n}"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn views_report_their_layout_and_compare_by_value() {
    let a = Tensor::<f64>::from_vec((0..6).map(f64::from).collect(), &[2, 3]);
    assert_eq!((a.strides(), a.t().strides()), (&[3, 1][..], &[1, 3][..]));
    assert!(!a.is_empty());
    assert!(a.narrow(1, 1, 0).is_empty());
    // Equal shapes and elements, wherever they lie; a different shape or element is unequal.
    assert_eq!(a.t(), a.t().contiguous());
    assert_ne!(a, a.reshape(&[3, 2]));
    assert_ne!(a, a.t());
    let mut b = a.contiguous();
    b.make_mut_slice()[4] = -1.0;
    assert_ne!(a, b);
}

#[test]
fn into_vec_gives_a_views_elements_and_moves_storage_it_owns_whole() {
    let a = Tensor::<f32>::from_vec((0..6u8).map(f32::from).collect(), &[2, 3]);
    assert_eq!(a.t().into_vec(), vec![0., 3., 1., 4., 2., 5.]);
    assert_eq!(a.narrow(0, 1, 1).into_vec(), vec![3., 4., 5.]);
    assert_eq!(a.narrow(0, 0, 1).into_vec(), vec![0., 1., 2.]);
    assert_eq!(a.clone().into_vec(), a.to_vec());
    let at = a.as_slice().unwrap().as_ptr();
    let v = a.into_vec();
    assert_eq!((v.as_ptr(), v), (at, vec![0., 1., 2., 3., 4., 5.]));
}

#[test]
fn views_never_copy_and_contiguous_copies_only_when_needed() {
    let mut rng = StdRng::seed_from_u64(1);
    let a = Tensor::<f32>::randn(&[4, 6], &mut rng);
    for v in [a.t(), a.narrow(1, 1, 3), a.reshape(&[2, 12]), a.unsqueeze(0), a.broadcast_to(&[3, 4, 6])] {
        assert!(v.shares_storage(&a));
    }
    assert!(a.contiguous().shares_storage(&a));
    let tc = a.t().contiguous();
    assert!(!tc.shares_storage(&a));
    assert!(tc.is_contiguous());
    assert_eq!(tc, a.t());
    assert_eq!(a.unsqueeze(1).squeeze(1), a);
}

#[test]
fn errors_name_the_op_and_shapes() {
    let a = Tensor::<f32>::zeros(&[2, 3]);
    let b = Tensor::<f32>::zeros(&[4, 3]);
    let e = a.try_add(&b).unwrap_err().to_string();
    assert_eq!(e, "add: shapes [2, 3] and [4, 3] do not match");
    let e = a.try_matmul(&b).unwrap_err().to_string();
    assert_eq!(e, "matmul: shapes [2, 3] and [4, 3] do not match");
    assert!(Tensor::<f32>::try_from_vec(vec![1.0; 5], &[2, 3]).is_err());
    assert!(a.t().try_reshape(&[6]).is_err());
    assert!(a.try_reshape(&[5]).is_err());
    let p = std::panic::catch_unwind(|| a.mul(&b)).unwrap_err();
    assert_eq!(p.downcast_ref::<String>().unwrap(), "mul: shapes [2, 3] and [4, 3] do not match");
}

#[test]
fn constructors() {
    assert_eq!(Tensor::<f32>::eye(2).to_vec(), vec![1., 0., 0., 1.]);
    assert_eq!(Tensor::<f64>::arange(3).to_vec(), vec![0., 1., 2.]);
    assert_eq!(Tensor::<f32>::full(&[2], 7.0).to_vec(), vec![7., 7.]);
    let mut r1 = StdRng::seed_from_u64(5);
    let mut r2 = StdRng::seed_from_u64(5);
    assert_eq!(Tensor::<f32>::randn(&[10], &mut r1), Tensor::<f32>::randn(&[10], &mut r2));
    let u = Tensor::<f64>::rand_uniform(&[1000], -0.5, 0.5, &mut r1);
    assert!(u.to_vec().iter().all(|&x| (-0.5..0.5).contains(&x)));
    let _: f64 = r1.random();
}

#[test]
fn large_kernels_take_the_parallel_path_and_agree() {
    four_threads().install(large_kernels_body);
}

fn large_kernels_body() {
    let mut rng = StdRng::seed_from_u64(11);
    let n = tensor::internals::PAR_MIN_LEN * 3 + 5;
    assert!(tensor::internals::parallel(n), "a four-thread pool splits {n} elements");
    let x = Tensor::<f64>::randn(&[n / 5, 5], &mut rng);
    let y = x.t().exp(); // strided, parallel
    for j in [0, 1, n / 10] {
        assert_eq!(y.get(&[2, j]).unwrap(), x.get(&[j, 2]).unwrap().exp());
    }
    let s: f64 = x.to_vec().iter().sum();
    assert!((x.sum().item() - s).abs() < 1e-9 * s.abs().max(1.0));
    let mut z = x.clone();
    z.axpy(2.0, &x);
    assert_eq!(z.get(&[7, 3]).unwrap(), 3.0 * x.get(&[7, 3]).unwrap());
    assert_eq!(x.get(&[7, 3]).unwrap(), x.to_vec()[38]); // copy on write left x alone
}

#[test]
fn in_place_forms_with_strided_right_hand_sides() {
    // rhs transposed: its last axis has stride 3, neither 0 nor 1.
    let a = Tensor::<f64>::arange(12).reshape(&[3, 4]);
    let b = Tensor::<f64>::arange(12).reshape(&[4, 3]).t();
    let mut sum = a.clone();
    sum.add_assign_t(&b);
    assert_eq!(sum, &a + &b);
    assert_eq!(sum.get(&[1, 2]).unwrap(), 6.0 + 7.0);
    let mut prod = a.clone();
    prod.zip_inplace(&b, |x, y| x * y - 1.0);
    assert_eq!(prod.get(&[2, 3]).unwrap(), 11.0 * 11.0 - 1.0);
    assert_eq!(prod.get(&[0, 1]).unwrap(), 1.0 * 3.0 - 1.0);
    let mut ax = a.clone();
    ax.axpy(0.5, &b.t().t());
    assert_eq!(ax.get(&[2, 1]).unwrap(), 9.0 + 0.5 * 5.0);
}

#[test]
fn fused_zip_sum_over_long_rows() {
    // Rows longer than the eight accumulators, with a remainder.
    let a = Tensor::<f64>::arange(2 * 37).reshape(&[2, 37]);
    let b = a.mul_scalar(0.5).add_scalar(1.0);
    let got = a.zip_sum_last(&b, |x, y| x * y);
    for r in 0..2 {
        let want: f64 = (0..37).map(|j| a.get(&[r, j]).unwrap() * b.get(&[r, j]).unwrap()).sum();
        assert_eq!(got.get(&[r]).unwrap(), want);
    }
    // Views: a broadcast operand (rows repeated with stride 0), a row-narrowed one (rows at
    // an offset, stride 40) and a transposed one (copied) give the dense operands' sums.
    let row = Tensor::<f64>::arange(37).add_scalar(-7.0).reshape(&[1, 37]);
    let wide = Tensor::<f64>::arange(3 * 40).reshape(&[3, 40]).narrow(1, 2, 37).narrow(0, 1, 2);
    let tr = Tensor::<f64>::arange(37 * 2).reshape(&[37, 2]).t();
    for (x, y) in [(&row.broadcast_to(&[2, 37]), &a), (&a, &wide), (&tr, &row.broadcast_to(&[2, 37]))] {
        let want = x.contiguous().zip_sum_last(&y.contiguous(), |x, y| x * y + 1.0);
        assert_eq!(x.zip_sum_last(y, |x, y| x * y + 1.0), want);
    }
    // And the plain sum of a long slice.
    assert_eq!(tensor::internals::sum_slice(&(1..=100).map(f64::from).collect::<Vec<_>>()), 5050.0);
}

/// `got`'s elements and shape are `want`'s, NaN matching NaN.
#[track_caller]
fn assert_values<T: tensor::Element + std::fmt::Debug>(got: &Tensor<T>, shape: &[usize], want: &[T]) {
    let same = |a: &T, b: &T| a == b || (a.is_nan() && b.is_nan());
    let v = got.to_vec();
    assert!(
        got.shape() == shape && v.len() == want.len() && v.iter().zip(want).all(|(a, b)| same(a, b)),
        "{got:?}, want {shape:?} {want:?}"
    );
}

#[test]
fn reductions_propagate_nan_and_keep_infinities_and_empty_axes() {
    let (nan, inf) = (f64::NAN, f64::INFINITY);
    // A NaN is never hidden by a maximum: not where it is the running maximum, nor where it
    // is the next element (`f64::max` would drop it either way), on both the per-row fold
    // (the last axis) and the row-by-row combine (the first); in f32 too.
    let x = Tensor::from_vec(vec![nan, 1.0, 2.0, 4.0, 5.0, nan], &[2, 3]);
    assert!(x.max().item().is_nan() && x.max_all(true).item().is_nan());
    assert_values(&x.max_axis(1, false), &[2], &[nan, nan]);
    assert_values(&x.max_axis(0, true), &[1, 3], &[nan, 5.0, nan]);
    assert_values(&x.logsumexp_axis(1, false), &[2], &[nan, nan]);
    let y = Tensor::from_vec(vec![1f32, f32::NAN, 3.0, 4.0, 0.0, 6.0], &[2, 3]);
    assert!(y.max().item().is_nan());
    assert_values(&y.max_axis(0, false), &[3], &[4.0, f32::NAN, 6.0]);
    assert_values(&y.max_axis(1, false), &[2], &[f32::NAN, 6.0]);
    // logsumexp of rows of −∞ is −∞, and of a row holding +∞ is +∞ (the shift by the
    // maximum would make both NaN); finite rows are unchanged by their neighbours.
    let z = Tensor::from_vec(vec![-inf, -inf, 0.0, inf, 0.0, 0.0], &[3, 2]);
    assert_values(&z.logsumexp_axis(1, false), &[3], &[-inf, inf, 2f64.ln()]);
    assert_eq!(z.narrow(0, 0, 1).logsumexp().item(), -inf);
    assert_eq!(z.logsumexp().item(), inf);
    // Empty: sums are 0, maxima and logsumexp −∞, means NaN, over all axes or one.
    let e = Tensor::<f64>::zeros(&[2, 0]);
    assert_eq!((e.sum().item(), e.max().item(), e.logsumexp().item()), (0.0, -inf, -inf));
    assert!(e.mean().item().is_nan());
    assert_values(&e.sum_axis(1, false), &[2], &[0.0, 0.0]);
    assert_values(&e.max_axis(1, true), &[2, 1], &[-inf, -inf]);
    assert_values(&e.logsumexp_axis(1, false), &[2], &[-inf, -inf]);
    assert_values(&e.mean_axis(1, false), &[2], &[nan, nan]);
    assert_values(&e.sum_axis(0, false), &[0], &[]);
    // The mean of all elements, small and past a parallel task's chunk.
    assert_eq!(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.5], &[2, 2]).mean().item(), 2.625);
    assert_eq!(Tensor::<f64>::arange(100_000).reshape(&[400, 250]).t().mean().item(), 49_999.5);
}

#[test]
fn reductions_refuse_axes_and_shapes_they_cannot_take() {
    let x = Tensor::<f64>::arange(6).reshape(&[2, 3]);
    assert!(x.try_sum_axis(2, false).is_err() && x.try_mean_axis(2, true).is_err());
    assert!(x.try_max_axis(5, false).is_err() && x.try_logsumexp_axis(2, false).is_err());
    // sum_to: only shapes that broadcast up to [2, 3].
    for bad in [&[2, 3, 1][..], &[3, 3], &[2], &[2, 2], &[1, 2]] {
        assert!(x.try_sum_to(bad).is_err(), "sum_to {bad:?}");
    }
    assert_values(&x.sum_to(&[3]), &[3], &[3.0, 5.0, 7.0]);
    assert_values(&x.sum_to(&[1, 3]), &[1, 3], &[3.0, 5.0, 7.0]);
    assert_values(&x.sum_to(&[2, 1]), &[2, 1], &[3.0, 12.0]);
    assert_values(&x.sum_to(&[1, 1]), &[1, 1], &[15.0]);
    assert_values(&x.sum_to(&[]), &[], &[15.0]);
    assert_values(&x.sum_to(&[2, 3]), &[2, 3], &x.to_vec());
    // zip_sum_last: equal shapes of rank ≥ 1; rows of length 0 sum to 0.
    assert!(x.try_zip_sum_last(&x.t(), |a, b| a * b).is_err());
    assert!(x.try_zip_sum_last(&x.reshape(&[6]), |a, b| a * b).is_err());
    let s = Tensor::scalar(2.0);
    assert!(s.try_zip_sum_last(&s, |a, b| a * b).is_err());
    let rows = Tensor::<f64>::zeros(&[3, 0]);
    assert_values(&rows.zip_sum_last(&rows, |a, b| a * b + 1.0), &[3], &[0.0; 3]);
}

#[test]
fn debug_shows_type_shape_and_at_most_32_elements() {
    assert_eq!(format!("{:?}", Tensor::<f32>::arange(3)), "Tensor<f32>[3] [0.0, 1.0, 2.0]");
    let long = format!("{:?}", Tensor::<f64>::arange(40).reshape(&[4, 10]));
    assert!(long.starts_with("Tensor<f64>[4, 10] [0.0, 1.0,") && long.ends_with("31.0] …"), "{long}");
}

#[test]
fn dtype_names() {
    assert_eq!(tensor::DType::F32.to_string(), "f32");
    assert_eq!(format!("{}", tensor::DType::F64), "f64");
    assert_eq!(<f32 as tensor::Element>::DTYPE, tensor::DType::F32);
}

#[test]
fn in_place_scalar_forms_copy_on_write() {
    let a = Tensor::<f64>::arange(6).reshape(&[2, 3]);
    let mut scaled = a.t();
    scaled.scale_inplace(-2.0);
    assert_eq!(scaled.to_vec(), vec![0., -6., -2., -8., -4., -10.]);
    let mut filled = a.clone();
    filled.fill(7.5);
    assert_eq!(filled.to_vec(), vec![7.5; 6]);
    let mut mapped = a.t();
    mapped.map_inplace(|x| x * x + 1.0);
    assert_eq!(mapped.to_vec(), vec![1., 10., 2., 17., 5., 26.]);
    assert_eq!(a.to_vec(), vec![0., 1., 2., 3., 4., 5.]); // the shared original is untouched
}

#[test]
fn select_rows_gathers_in_order() {
    let a = Tensor::<f64>::arange(12).reshape(&[4, 3]);
    let g = a.t().t().select_rows(&[2, 0, 2]);
    assert_eq!(g.shape(), &[3, 3]);
    assert_eq!(g.to_vec(), vec![6., 7., 8., 0., 1., 2., 6., 7., 8.]);
    // Non-contiguous input: rows of a transposed view.
    assert_eq!(a.t().select_rows(&[1]).to_vec(), vec![1., 4., 7., 10.]);
    assert!(std::panic::catch_unwind(|| a.select_rows(&[4])).is_err());
    assert!(Tensor::<f64>::scalar(1.0).try_select_rows(&[]).is_err(), "a scalar has no rows");
    assert_eq!(a.select_rows(&[]).shape(), &[0, 3]);
}
