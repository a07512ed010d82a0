//! Optimizers over a [`ParamSet`]: Adam, SGD with momentum, Adagrad, with PyTorch's update
//! rules and state names (so a checkpoint's optimizer state reads like PyTorch's).

use rayon::prelude::*;
use tensor::{vectorized, Element, Tensor, VectorLoop};

use crate::error::{Result, VaeError};

pub use crate::config::{OptimizerConfig, OptimizerKind};
use crate::nn::ParamSet;

/// Below this many elements a parameter's update stays on the calling thread; above, it
/// splits into tasks of this many (the split is elementwise, so the bits do not depend on
/// it).
const PAR_MIN_LEN: usize = 1 << 15;

/// An optimizer: its settings, the step count and per-parameter state.
#[derive(Clone, Debug)]
pub struct Optimizer<T: Element> {
    /// The rule, learning rate and weight decay.
    pub config: OptimizerConfig,
    /// Updates applied so far.
    pub steps: u64,
    /// `state[slot][param]`, zeros of each parameter's shape to start.
    state: Vec<Vec<Tensor<T>>>,
}

impl<T: Element> Optimizer<T> {
    /// A fresh optimizer for `params`.
    pub fn new(config: OptimizerConfig, params: &ParamSet<T>) -> Self {
        let state = config
            .kind
            .slots()
            .iter()
            .map(|_| params.tensors().iter().map(|p| Tensor::zeros(p.shape())).collect())
            .collect();
        Optimizer { config, steps: 0, state }
    }

    /// The state tensors with their names, `"{slot}.{param}"` (e.g. `exp_avg.fc1.weight`).
    pub fn named_state<'a>(
        &'a self,
        params: &'a ParamSet<T>,
    ) -> impl Iterator<Item = (String, &'a Tensor<T>)> + 'a {
        self.config.kind.slots().iter().zip(&self.state).flat_map(move |(slot, ts)| {
            params.names().iter().zip(ts).map(move |(name, t)| (format!("{slot}.{name}"), t))
        })
    }

    /// Mutable access to the state tensor of `slot` for parameter `index` (for loading).
    pub fn state_mut(&mut self, slot: usize, index: usize) -> &mut Tensor<T> {
        &mut self.state[slot][index]
    }

    /// Applies one update to every parameter, with `grads[i]` the gradient of parameter `i`.
    /// An error, before anything changes, unless there is one gradient per parameter, of its
    /// shape, and the optimizer's state was made for these parameters.
    pub fn step(&mut self, params: &mut ParamSet<T>, grads: &[Tensor<T>]) -> Result<()> {
        let shapes_fit = |ts: &[Tensor<T>]| {
            ts.len() == params.len() && ts.iter().zip(params.tensors()).all(|(t, p)| t.shape() == p.shape())
        };
        if !shapes_fit(grads) || !self.state.iter().all(|slot| shapes_fit(slot)) {
            return Err(VaeError::invalid(
                "optimizer step",
                format!(
                    "{} gradients (and state) for {} parameters, or of other shapes",
                    grads.len(),
                    params.len()
                ),
            ));
        }
        self.steps += 1;
        let OptimizerConfig { kind, lr, weight_decay, decoupled_weight_decay } = self.config;
        let coupled = weight_decay != 0.0 && !decoupled_weight_decay;
        let shrink = (weight_decay != 0.0 && decoupled_weight_decay)
            .then(|| T::from_f64_lossy(1.0 - lr * weight_decay));
        // Bias corrections: β^t with the step count saturated at i32::MAX, where β^t of any
        // β < 1 is long since 0 (no wrap-around, however long the run).
        let t = i32::try_from(self.steps).unwrap_or(i32::MAX);
        for (i, (p, g)) in params.tensors_mut().iter_mut().zip(grads).enumerate() {
            // PyTorch's L2 weight decay: the gradient of ½·wd·‖p‖², added to the gradient.
            let g = if !coupled {
                g.contiguous()
            } else {
                let wd = T::from_f64_lossy(weight_decay);
                g.zip_with(p, |g, p| g + wd * p)
            };
            let g = g.as_slice().expect("contiguous");
            let p = p.make_mut_slice();
            // Decoupled decay: the parameters shrink before the rule's step (PyTorch's AdamW).
            if let Some(keep) = shrink {
                p.iter_mut().for_each(|p| *p *= keep);
            }
            match kind {
                OptimizerKind::Adam { beta1, beta2, eps } => {
                    let (m_slot, v_slot) = self.state.split_at_mut(1);
                    let m = m_slot[0][i].make_mut_slice();
                    let v = v_slot[0][i].make_mut_slice();
                    let bc1 = 1.0 - beta1.powi(t);
                    let bc2 = 1.0 - beta2.powi(t);
                    let step_size = T::from_f64_lossy(lr / bc1);
                    let inv_sqrt_bc2 = T::from_f64_lossy(1.0 / bc2.sqrt());
                    let (b1, b2, eps) =
                        (T::from_f64_lossy(beta1), T::from_f64_lossy(beta2), T::from_f64_lossy(eps));
                    let rule = AdamRule { b1, b2, eps, step_size, inv_sqrt_bc2 };
                    if p.len() >= PAR_MIN_LEN && rayon::current_num_threads() > 1 {
                        p.par_chunks_mut(PAR_MIN_LEN)
                            .zip(m.par_chunks_mut(PAR_MIN_LEN))
                            .zip(v.par_chunks_mut(PAR_MIN_LEN))
                            .zip(g.par_chunks(PAR_MIN_LEN))
                            .for_each(|(((p, m), v), g)| vectorized(AdamUpdate { rule, p, m, v, g }));
                    } else {
                        vectorized(AdamUpdate { rule, p, m, v, g });
                    }
                }
                OptimizerKind::Sgd { momentum } => {
                    let lr = T::from_f64_lossy(lr);
                    if momentum == 0.0 {
                        p.iter_mut().zip(g).for_each(|(p, &g)| *p -= lr * g);
                    } else {
                        let mu = T::from_f64_lossy(momentum);
                        let first = self.steps == 1;
                        let buf = self.state[0][i].make_mut_slice();
                        p.iter_mut().zip(buf.iter_mut()).zip(g).for_each(|((p, b), &g)| {
                            *b = if first { g } else { mu * *b + g };
                            *p -= lr * *b;
                        });
                    }
                }
                OptimizerKind::Adagrad { eps } => {
                    let (lr, eps) = (T::from_f64_lossy(lr), T::from_f64_lossy(eps));
                    let sum = self.state[0][i].make_mut_slice();
                    p.iter_mut().zip(sum.iter_mut()).zip(g).for_each(|((p, s), &g)| {
                        *s += g * g;
                        *p -= lr * g / (s.sqrt() + eps);
                    });
                }
            }
        }
        Ok(())
    }
}

/// Adam's coefficients for one step: `β₁`, `β₂`, `ε`, `lr / (1 − β₁ᵗ)` and `1 / √(1 − β₂ᵗ)`.
#[derive(Clone, Copy)]
struct AdamRule<T> {
    b1: T,
    b2: T,
    eps: T,
    step_size: T,
    inv_sqrt_bc2: T,
}

/// Adam's update of a run of one parameter's elements, their moments and gradients (a
/// [`VectorLoop`]: it runs with the CPU's widest vectors, being most of an optimizer step's
/// memory traffic).
struct AdamUpdate<'a, T> {
    rule: AdamRule<T>,
    p: &'a mut [T],
    m: &'a mut [T],
    v: &'a mut [T],
    g: &'a [T],
}

impl<T: Element> VectorLoop for AdamUpdate<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let AdamRule { b1, b2, eps, step_size, inv_sqrt_bc2 } = self.rule;
        let (c1, c2) = (T::one() - b1, T::one() - b2);
        for (((p, m), v), &g) in self.p.iter_mut().zip(self.m.iter_mut()).zip(self.v.iter_mut()).zip(self.g) {
            *m = b1 * *m + c1 * g;
            *v = b2 * *v + c2 * g * g;
            *p -= step_size * *m / (v.sqrt() * inv_sqrt_bc2 + eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minimizes (p − 3)² from p = 0 with each rule.
    fn minimize(kind: OptimizerKind, lr: f64, steps: usize) -> f64 {
        let mut params = ParamSet::<f64>::new();
        params.push("p", Tensor::zeros(&[1]));
        let mut opt = Optimizer::new(OptimizerConfig { kind, lr, ..OptimizerConfig::default() }, &params);
        for _ in 0..steps {
            let p = params.tensors()[0].item();
            opt.step(&mut params, &[Tensor::from_vec(vec![2.0 * (p - 3.0)], &[1])]).unwrap();
        }
        params.tensors()[0].item()
    }

    #[test]
    fn every_rule_converges() {
        assert!((minimize(OptimizerKind::adam(), 0.1, 500) - 3.0).abs() < 1e-3);
        assert!((minimize(OptimizerKind::Sgd { momentum: 0.9 }, 0.01, 500) - 3.0).abs() < 1e-3);
        assert!((minimize(OptimizerKind::Sgd { momentum: 0.0 }, 0.1, 200) - 3.0).abs() < 1e-6);
        assert!((minimize(OptimizerKind::Adagrad { eps: 1e-10 }, 1.0, 500) - 3.0).abs() < 1e-3);
    }

    #[test]
    fn weight_decay_adds_wd_times_p_to_the_gradient() {
        let mut params = ParamSet::<f64>::new();
        params.push("p", Tensor::from_vec(vec![2.0, -1.0], &[2]));
        let config = OptimizerConfig {
            kind: OptimizerKind::Sgd { momentum: 0.0 },
            lr: 0.5,
            weight_decay: 0.25,
            ..OptimizerConfig::default()
        };
        let mut opt = Optimizer::new(config, &params);
        opt.step(&mut params, &[Tensor::from_vec(vec![1.0, 0.0], &[2])]).unwrap();
        // p − lr·(g + wd·p): 2 − 0.5·(1 + 0.5) = 1.25; −1 − 0.5·(0 − 0.25) = −0.875.
        assert_eq!(params.tensors()[0].to_vec(), vec![1.25, -0.875]);
    }

    /// AdamW: the parameters shrink by lr·wd·p outside Adam's normalization, where coupled
    /// decay is normalized away. With a zero loss gradient, Adam with coupled decay moves
    /// every parameter by about lr whatever its size; decoupled, each keeps (1 − lr·wd)
    /// of itself per step.
    #[test]
    fn decoupled_weight_decay_shrinks_the_parameters_outside_the_rule() {
        let run = |decoupled_weight_decay: bool| {
            let mut params = ParamSet::<f64>::new();
            params.push("p", Tensor::from_vec(vec![4.0, -0.5], &[2]));
            let (lr, weight_decay) = (0.1, 0.5);
            let config =
                OptimizerConfig { lr, weight_decay, decoupled_weight_decay, ..OptimizerConfig::default() };
            let mut opt = Optimizer::new(config, &params);
            for _ in 0..3 {
                opt.step(&mut params, &[Tensor::zeros(&[2])]).unwrap();
            }
            params.tensors()[0].to_vec()
        };
        let keep = 0.95f64.powi(3);
        assert_eq!(run(true), vec![4.0 * keep, -0.5 * keep]);
        let coupled = run(false);
        assert!((coupled[0] - 3.7).abs() < 0.01 && (coupled[1] + 0.2).abs() < 0.01, "{coupled:?}");
    }

    #[test]
    fn adam_first_step_is_lr_times_sign() {
        // With bias correction, Adam's first step is lr·g/|g| (up to eps).
        let mut params = ParamSet::<f64>::new();
        params.push("p", Tensor::from_vec(vec![1.0, 1.0], &[2]));
        let mut opt = Optimizer::new(OptimizerConfig::default(), &params);
        opt.step(&mut params, &[Tensor::from_vec(vec![0.5, -20.0], &[2])]).unwrap();
        let p = params.tensors()[0].to_vec();
        assert!((p[0] - (1.0 - 1e-3)).abs() < 1e-9 && (p[1] - (1.0 + 1e-3)).abs() < 1e-9, "{p:?}");
        let names: Vec<String> = opt.named_state(&params).map(|(n, _)| n).collect();
        assert_eq!(names, vec!["exp_avg.p", "exp_avg_sq.p"]);
    }

    #[test]
    fn a_step_with_the_wrong_gradients_changes_nothing() {
        let mut params = ParamSet::<f64>::new();
        params.push("a", Tensor::ones(&[2]));
        params.push("b", Tensor::ones(&[3]));
        let config = OptimizerConfig {
            kind: OptimizerKind::Sgd { momentum: 0.0 },
            lr: 0.1,
            ..OptimizerConfig::default()
        };
        let mut opt = Optimizer::new(config, &params);
        let err = opt.step(&mut params, &[Tensor::ones(&[2])]).unwrap_err().to_string();
        assert!(err.starts_with("optimizer step: 1 gradients"), "{err}");
        assert!(opt.step(&mut params, &[Tensor::ones(&[2]), Tensor::ones(&[2])]).is_err(), "a shape differs");
        assert_eq!(params.tensors()[0].to_vec(), vec![1.0; 2], "nothing moved");
        assert_eq!(opt.steps, 0, "no step counted");
        opt.step(&mut params, &[Tensor::ones(&[2]), Tensor::ones(&[3])]).unwrap();
        assert_eq!(params.tensors()[0].to_vec(), vec![0.9; 2]);
    }
}
