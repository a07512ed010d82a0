//! Small dense linear algebra on [`Tensor<f64>`], for the examples that check the theory
//! against closed forms: least squares, orthonormal bases, top eigenvectors of a covariance by
//! subspace iteration, and principal angles between subspaces.

use tensor::Tensor;

use vae::{Result, VaeError};

/// Solves `A x = B` for a symmetric positive-definite `A` (`[n, n]`) and `B` (`[n, m]`) by
/// Cholesky factorization. An error if the shapes do not fit or `A` is not positive
/// definite (to working precision).
pub fn solve_spd(a: &Tensor<f64>, b: &Tensor<f64>) -> Result<Tensor<f64>> {
    let (sa, sb) = (a.shape(), b.shape());
    if sa.len() != 2 || sb.len() != 2 || sa[0] != sa[1] || sb[0] != sa[0] {
        return Err(VaeError::invalid("solve_spd", format!("A {sa:?} must be [n, n] and B {sb:?} [n, m]")));
    }
    let (n, m) = (sa[0], sb[1]);
    let a = a.to_vec();
    // A = L Lᵀ.
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = a[i * n + j] - (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum::<f64>();
            if i == j {
                // `!(s > 0)`: a NaN pivot is no pivot either.
                if s.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                    return Err(VaeError::invalid(
                        "solve_spd",
                        format!("the matrix is not positive definite (pivot {i} is {s})"),
                    ));
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    let mut x = b.to_vec();
    for c in 0..m {
        // L y = b, then Lᵀ x = y.
        for i in 0..n {
            let s: f64 = (0..i).map(|k| l[i * n + k] * x[k * m + c]).sum();
            x[i * m + c] = (x[i * m + c] - s) / l[i * n + i];
        }
        for i in (0..n).rev() {
            let s: f64 = (i + 1..n).map(|k| l[k * n + i] * x[k * m + c]).sum();
            x[i * m + c] = (x[i * m + c] - s) / l[i * n + i];
        }
    }
    Ok(Tensor::from_vec(x, &[n, m]))
}

/// The least-squares fit `y ≈ x·Wᵀ + b` by the normal equations: returns `(W [out, in],
/// b [out])` for `x` `[n, in]` and `y` `[n, out]`. An error if the shapes do not fit or
/// the design (with its column of ones) is rank-deficient, so that no fit is unique.
pub fn least_squares(x: &Tensor<f64>, y: &Tensor<f64>) -> Result<(Tensor<f64>, Tensor<f64>)> {
    let (sx, sy) = (x.shape(), y.shape());
    if sx.len() != 2 || sy.len() != 2 || sx[0] != sy[0] {
        return Err(VaeError::invalid(
            "least_squares",
            format!("x {sx:?} and y {sy:?} must be [n, in] and [n, out]"),
        ));
    }
    let (n, d) = (sx[0], sx[1]);
    // Augment with a column of ones for the intercept.
    let xa = Tensor::from_vec(
        x.to_vec().chunks(d).flat_map(|r| r.iter().copied().chain([1.0])).collect(),
        &[n, d + 1],
    );
    let theta = solve_spd(&xa.t().matmul(&xa), &xa.t().matmul(y)).map_err(|_| {
        VaeError::invalid(
            "least_squares",
            format!("the design of {n} rows, {d} inputs and an intercept is rank-deficient: no unique fit"),
        )
    })?;
    let w = theta.narrow(0, 0, d).t().contiguous();
    let b = theta.narrow(0, d, 1).reshape(&[y.shape()[1]]);
    Ok((w, b))
}

/// Orthonormalizes the columns of `a` (`[n, k]`) by modified Gram–Schmidt.
pub fn orthonormalize(a: &Tensor<f64>) -> Tensor<f64> {
    let (n, k) = (a.shape()[0], a.shape()[1]);
    let mut cols: Vec<Vec<f64>> = (0..k).map(|j| (0..n).map(|i| a.get(&[i, j]).unwrap()).collect()).collect();
    for j in 0..k {
        for p in 0..j {
            let dot: f64 = cols[j].iter().zip(&cols[p]).map(|(a, b)| a * b).sum();
            let prev = cols[p].clone();
            cols[j].iter_mut().zip(&prev).for_each(|(a, b)| *a -= dot * b);
        }
        let norm = cols[j].iter().map(|v| v * v).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
        cols[j].iter_mut().for_each(|v| *v /= norm);
    }
    Tensor::from_vec((0..n).flat_map(|i| cols.iter().map(move |c| c[i])).collect(), &[n, k])
}

/// Eigenvalues of a small symmetric matrix (`[k, k]`) by cyclic Jacobi rotations, in
/// decreasing order.
pub fn symmetric_eigenvalues(a: &Tensor<f64>) -> Vec<f64> {
    let k = a.shape()[0];
    let mut m = a.to_vec();
    for _sweep in 0..100 {
        let off: f64 = (0..k)
            .flat_map(|i| (0..k).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * k + j].powi(2))
            .sum();
        if off < 1e-30 {
            break;
        }
        for p in 0..k {
            for q in p + 1..k {
                let apq = m[p * k + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (m[q * k + q] - m[p * k + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let (c, s) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
                for r in 0..k {
                    let (mrp, mrq) = (m[r * k + p], m[r * k + q]);
                    m[r * k + p] = c * mrp - s * mrq;
                    m[r * k + q] = s * mrp + c * mrq;
                }
                for r in 0..k {
                    let (mpr, mqr) = (m[p * k + r], m[q * k + r]);
                    m[p * k + r] = c * mpr - s * mqr;
                    m[q * k + r] = s * mpr + c * mqr;
                }
            }
        }
    }
    let mut ev: Vec<f64> = (0..k).map(|i| m[i * k + i]).collect();
    ev.sort_by(|a, b| b.total_cmp(a));
    ev
}

/// An orthonormal basis (`[d, k]`) of the top-`k` eigenvectors of the symmetric positive
/// semi-definite `cov` (`[d, d]`), by subspace iteration from a seeded start.
pub fn top_eigenvectors(cov: &Tensor<f64>, k: usize, iterations: usize, seed: u64) -> Tensor<f64> {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut q = orthonormalize(&Tensor::randn(&[cov.shape()[0], k], &mut rng));
    for _ in 0..iterations {
        q = orthonormalize(&cov.matmul(&q));
    }
    q
}

/// The principal angles (radians, largest first) between the column spaces of `a` and `b`
/// (both `[d, k]`, any bases): the arccosines of the singular values of `QaᵀQb`.
pub fn principal_angles(a: &Tensor<f64>, b: &Tensor<f64>) -> Vec<f64> {
    let (qa, qb) = (orthonormalize(a), orthonormalize(b));
    let m = qa.t().matmul(&qb);
    let mut cosines: Vec<f64> =
        symmetric_eigenvalues(&m.t().matmul(&m)).into_iter().map(|e| e.max(0.0).sqrt().min(1.0)).collect();
    cosines.sort_by(|a, b| a.total_cmp(b));
    cosines.into_iter().map(f64::acos).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn least_squares_recovers_an_exact_fit() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let x = Tensor::<f64>::randn(&[50, 3], &mut rng);
        let w = Tensor::from_vec(vec![1.0, -2.0, 0.5, 3.0, 0.0, 1.0], &[2, 3]);
        let b = Tensor::from_vec(vec![0.25, -1.0], &[2]);
        let y = &x.matmul(&w.t()) + &b;
        let (wf, bf) = least_squares(&x, &y).unwrap();
        for (g, e) in wf.to_vec().iter().chain(&bf.to_vec()).zip(w.to_vec().iter().chain(&b.to_vec())) {
            assert!((g - e).abs() < 1e-10);
        }
    }

    #[test]
    fn eigen_and_angles() {
        let a = Tensor::from_vec(vec![2.0, 1.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 5.0], &[3, 3]);
        let ev = symmetric_eigenvalues(&a);
        for (g, e) in ev.iter().zip([5.0, 3.0, 1.0]) {
            assert!((g - e).abs() < 1e-12);
        }
        let top = top_eigenvectors(&a, 2, 200, 1);
        // Span of e3 and (1, 1, 0)/√2.
        let want = Tensor::from_vec(vec![0.0, 1.0, 0.0, 1.0, 1.0, 0.0], &[3, 2]);
        assert!(principal_angles(&top, &want)[0] < 1e-6);
        let other = Tensor::from_vec(vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0], &[3, 2]);
        assert!((principal_angles(&other, &want)[0] - std::f64::consts::FRAC_PI_4).abs() < 1e-9);
    }

    #[test]
    fn bad_shapes_and_singular_systems_are_errors() {
        let square = Tensor::<f64>::eye(2);
        assert!(solve_spd(&Tensor::zeros(&[2, 3]), &square).is_err(), "A not square");
        assert!(solve_spd(&square, &Tensor::zeros(&[3, 1])).is_err(), "B of other rows");
        let singular = Tensor::from_vec(vec![1.0, 1.0, 1.0, 1.0], &[2, 2]);
        let err = solve_spd(&singular, &square).unwrap_err().to_string();
        assert!(err.starts_with("solve_spd: the matrix is not positive definite"), "{err}");
        // Two equal input columns: no unique fit.
        let x = Tensor::from_vec(vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0], &[3, 2]);
        let y = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3, 1]);
        let err = least_squares(&x, &y).unwrap_err().to_string();
        assert!(err.contains("rank-deficient"), "{err}");
        assert!(least_squares(&x, &Tensor::zeros(&[2, 1])).is_err(), "rows differ");
    }
}
