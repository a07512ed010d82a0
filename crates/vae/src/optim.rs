//! Optimizers over a [`ParamSet`]: Adam, SGD with momentum, Adagrad, with PyTorch's update
//! rules and state names (so a checkpoint's optimizer state reads like PyTorch's).

use tensor::{vectorized, Element, Tensor, VectorLoop};

use crate::error::{Result, VaeError};

pub use crate::config::{OptimizerConfig, OptimizerKind};
use crate::nn::ParamSet;

/// The grain of the update's split: a list of parameters, or one parameter's elements, is
/// halved between threads while it holds at least twice this many elements (the split is
/// elementwise, so the bits do not depend on it).
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
        let rule = Rule::new(kind, lr, t, self.steps == 1);
        // PyTorch's L2 weight decay: the gradient of ½·wd·‖p‖², added to the gradient. The
        // rule reads each gradient as one slice; gradients that are already that, without
        // decay, are read in place (a step then allocates nothing).
        let adjusted: Vec<Tensor<T>>;
        let grads = if coupled || grads.iter().any(|g| g.as_slice().is_none()) {
            let wd = T::from_f64_lossy(weight_decay);
            let adjust = |(p, g): (&Tensor<T>, &Tensor<T>)| {
                if coupled {
                    g.zip_with(p, |g, p| g + wd * p)
                } else {
                    g.contiguous()
                }
            };
            adjusted = params.tensors().iter().zip(grads).map(adjust).collect();
            &adjusted
        } else {
            grads
        };
        let update = Update { rule, shrink, split: rayon::current_num_threads() > 1 };
        let mut slots = self.state.iter_mut();
        let s0 = slots.next().map_or(&mut [][..], |s| &mut s[..]);
        let s1 = slots.next().map_or(&mut [][..], |s| &mut s[..]);
        update.tensors(params.tensors_mut(), s0, s1, grads);
        Ok(())
    }
}

/// A rule's coefficients for one step.
#[derive(Clone, Copy)]
enum Rule<T> {
    Adam(AdamRule<T>),
    /// SGD; `momentum` is `None` at 0 (no buffer), and `first` says the buffer starts as
    /// the gradient (PyTorch's first step).
    Sgd {
        lr: T,
        momentum: Option<T>,
        first: bool,
    },
    Adagrad {
        lr: T,
        eps: T,
    },
}

impl<T: Element> Rule<T> {
    /// The coefficients of step `t` (counted from 1) of `kind` at rate `lr`.
    fn new(kind: OptimizerKind, lr: f64, t: i32, first: bool) -> Self {
        let lossy = T::from_f64_lossy;
        match kind {
            OptimizerKind::Adam { beta1, beta2, eps } => Rule::Adam(AdamRule {
                b1: lossy(beta1),
                b2: lossy(beta2),
                eps: lossy(eps),
                step_size: lossy(lr / (1.0 - beta1.powi(t))),
                inv_sqrt_bc2: lossy(1.0 / (1.0 - beta2.powi(t)).sqrt()),
            }),
            OptimizerKind::Sgd { momentum } => {
                Rule::Sgd { lr: lossy(lr), momentum: (momentum != 0.0).then(|| lossy(momentum)), first }
            }
            OptimizerKind::Adagrad { eps } => Rule::Adagrad { lr: lossy(lr), eps: lossy(eps) },
        }
    }

    /// Updates a run of one parameter's elements `p` with their gradients `g` and state
    /// `s0`, `s1` (the rule's slots in order, empty where it has fewer). Each element's
    /// update reads only that element, so any split into runs gives the same bits.
    fn apply(self, p: &mut [T], s0: &mut [T], s1: &mut [T], g: &[T]) {
        vectorized(RuleLoop { rule: self, p, s0, s1, g })
    }
}

/// A rule's update of a run of one parameter's elements, their state and gradients (a
/// [`VectorLoop`]: it runs with the CPU's widest vectors, being most of an optimizer step's
/// memory traffic).
///
/// Each loop keeps the state it writes in a local and computes the parameter's step from
/// that local, not from the slice: read back from memory, a value just stored waits for
/// the store to reach the cache wherever store-to-load forwarding fails, as it does on Zen 4
/// for a 64-byte store across a cache line (the allocator aligns buffers to 16 bytes), and
/// there the wait costs more than the update's arithmetic (`docs/performance.md`).
struct RuleLoop<'a, T> {
    rule: Rule<T>,
    p: &'a mut [T],
    s0: &'a mut [T],
    s1: &'a mut [T],
    g: &'a [T],
}

impl<T: Element> VectorLoop for RuleLoop<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let RuleLoop { rule, p, s0, s1, g } = self;
        match rule {
            Rule::Adam(AdamRule { b1, b2, eps, step_size, inv_sqrt_bc2 }) => {
                let (c1, c2) = (T::one() - b1, T::one() - b2);
                for (((p, m), v), &g) in p.iter_mut().zip(s0.iter_mut()).zip(s1.iter_mut()).zip(g) {
                    let m_next = b1 * *m + c1 * g;
                    let v_next = b2 * *v + c2 * g * g;
                    *m = m_next;
                    *v = v_next;
                    *p -= step_size * m_next / (v_next.sqrt() * inv_sqrt_bc2 + eps);
                }
            }
            Rule::Sgd { lr, momentum: None, .. } => p.iter_mut().zip(g).for_each(|(p, &g)| *p -= lr * g),
            Rule::Sgd { lr, momentum: Some(mu), first } => {
                for ((p, b), &g) in p.iter_mut().zip(s0.iter_mut()).zip(g) {
                    let b_next = if first { g } else { mu * *b + g };
                    *b = b_next;
                    *p -= lr * b_next;
                }
            }
            Rule::Adagrad { lr, eps } => {
                for ((p, s), &g) in p.iter_mut().zip(s0.iter_mut()).zip(g) {
                    let s_next = *s + g * g;
                    *s = s_next;
                    *p -= lr * g / (s_next.sqrt() + eps);
                }
            }
        }
    }
}

/// One step's update of a list of parameters: the rule, the decoupled decay's factor, and
/// whether to split the work among the pool's threads.
///
/// The work forks as one tree of `rayon::join`s (no allocation, one hand-off per branch):
/// the parameter list halves by element count, and a parameter longer than two
/// [`PAR_MIN_LEN`] runs halves its elements. Each element's update reads only that element,
/// so the bits do not depend on the split.
#[derive(Clone, Copy)]
struct Update<T> {
    rule: Rule<T>,
    /// `1 − lr·wd` of PyTorch's AdamW: the parameters shrink before the rule's step.
    shrink: Option<T>,
    split: bool,
}

impl<T: Element> Update<T> {
    /// Updates parameters `p` with their gradients `g` and state `s0`, `s1` (the rule's
    /// slots, empty where it has fewer). The gradients are contiguous.
    fn tensors(self, p: &mut [Tensor<T>], s0: &mut [Tensor<T>], s1: &mut [Tensor<T>], g: &[Tensor<T>]) {
        let len: usize = p.iter().map(Tensor::len).sum();
        if self.split && p.len() > 1 && len >= 2 * PAR_MIN_LEN {
            let mut before = 0;
            let half = p.iter().position(|t| {
                before += t.len();
                2 * before >= len
            });
            let mid = half.map_or(1, |i| i + 1).clamp(1, p.len() - 1);
            let ((p0, p1), (g0, g1)) = (p.split_at_mut(mid), g.split_at(mid));
            let ((a0, a1), (b0, b1)) = (split_state(s0, mid), split_state(s1, mid));
            rayon::join(|| self.tensors(p0, a0, b0, g0), || self.tensors(p1, a1, b1, g1));
            return;
        }
        for (i, (p, g)) in p.iter_mut().zip(g).enumerate() {
            let (s0, s1) = (state_of(s0, i), state_of(s1, i));
            self.elements(p.make_mut_slice(), s0, s1, g.as_slice().expect("contiguous"));
        }
    }

    /// Updates the elements `p` of one parameter (a run of them) with `g`, `s0` and `s1`.
    fn elements(self, p: &mut [T], s0: &mut [T], s1: &mut [T], g: &[T]) {
        if self.split && p.len() >= 2 * PAR_MIN_LEN {
            let mid = p.len() / 2 / PAR_MIN_LEN * PAR_MIN_LEN;
            let ((p0, p1), (g0, g1)) = (p.split_at_mut(mid), g.split_at(mid));
            let ((a0, a1), (b0, b1)) = (split_state(s0, mid), split_state(s1, mid));
            rayon::join(|| self.elements(p0, a0, b0, g0), || self.elements(p1, a1, b1, g1));
            return;
        }
        if let Some(keep) = self.shrink {
            p.iter_mut().for_each(|p| *p *= keep);
        }
        self.rule.apply(p, s0, s1, g);
    }
}

/// Parameter `i`'s state in a slot, empty for a slot the rule does not have.
fn state_of<T: Element>(s: &mut [Tensor<T>], i: usize) -> &mut [T] {
    s.get_mut(i).map_or(&mut [][..], Tensor::make_mut_slice)
}

/// Splits a slot's state at `mid` as its parameters split; a slot the rule does not have
/// (empty) gives two empty halves.
fn split_state<S>(s: &mut [S], mid: usize) -> (&mut [S], &mut [S]) {
    s.split_at_mut(mid.min(s.len()))
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

    /// Three steps of `kind` on a parameter long enough to split into runs (the last one
    /// short) and a small one, on a pool of `threads`: the parameters and the state's bits.
    fn three_steps_on(kind: OptimizerKind, weight_decay: f64, threads: usize) -> Vec<Vec<u32>> {
        let len = 3 * PAR_MIN_LEN + 5;
        let wave = |n: usize, f: f32| (0..n).map(|i| (i as f32 * f).sin()).collect::<Vec<f32>>();
        let mut params = ParamSet::<f32>::new();
        params.push("big", Tensor::from_vec(wave(len, 0.37), &[len]));
        params.push("small", Tensor::from_vec(wave(7, 1.1), &[7]));
        let config = OptimizerConfig { kind, lr: 0.01, weight_decay, ..OptimizerConfig::default() };
        let mut opt = Optimizer::new(config, &params);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        for step in 0..3 {
            let f = 0.11 + step as f32;
            let grads = [Tensor::from_vec(wave(len, f), &[len]), Tensor::from_vec(wave(7, f), &[7])];
            pool.install(|| opt.step(&mut params, &grads)).unwrap();
        }
        let state = opt.named_state(&params).map(|(_, t)| t.clone());
        params
            .tensors()
            .iter()
            .cloned()
            .chain(state)
            .map(|t| t.to_vec().iter().map(|x| x.to_bits()).collect())
            .collect()
    }

    #[test]
    fn every_rule_gives_the_same_bits_on_1_4_and_7_threads() {
        let kinds = [
            OptimizerKind::adam(),
            OptimizerKind::Sgd { momentum: 0.9 },
            OptimizerKind::Sgd { momentum: 0.0 },
            OptimizerKind::Adagrad { eps: 1e-10 },
        ];
        for kind in kinds {
            for weight_decay in [0.0, 0.1] {
                let one = three_steps_on(kind, weight_decay, 1);
                // Every element of the long parameter moved (all but the first have a
                // gradient): no run was left out.
                let moved = one[0]
                    .iter()
                    .enumerate()
                    .skip(1)
                    .all(|(i, &b)| f32::from_bits(b) != (i as f32 * 0.37).sin());
                assert!(moved, "{kind:?} wd {weight_decay}");
                for threads in [4, 7] {
                    assert!(
                        one == three_steps_on(kind, weight_decay, threads),
                        "{kind:?} wd {weight_decay}, {threads} threads"
                    );
                }
            }
        }
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
