//! Recycled storage: a process-wide free list of tensor buffers, so that a training step in
//! steady state takes every output and scratch buffer from the step before it instead of
//! the allocator.
//!
//! A tensor whose storage it alone owns gives that storage back when it is dropped
//! ([`give`]); a kernel making a new contiguous tensor takes one of the same length
//! ([`take`]) and overwrites all of it. The storage is the whole `Arc<Vec<T>>`, so neither
//! the buffer nor the `Arc`'s own block is allocated again. Buffers are matched by exact
//! length: a training loop asks for the same lengths every step.
//!
//! Bounded: the list keeps at most [`MAX_HELD`] elements per element type, and buffers
//! longer than a quarter of that are never kept; beyond that, storage is freed as usual.
//! One list for all threads (behind a mutex held for a lookup or a push), because buffers
//! cross threads: a batch made on the main thread is dropped by the rayon worker that runs
//! the step, and per-thread lists would fill on one side and stay empty on the other.
//!
//! What a taken buffer holds is whatever its last tensor held: every caller writes all of
//! it before anything reads it, so the contents never show (and results do not depend on
//! them).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::LocalKey;

use crate::error::{ok, Result, TensorError};

/// Elements the list keeps per element type (256 MiB of `f32`, 512 MiB of `f64`): more
/// than the transient buffers of a convolutional step at batch 128.
pub const MAX_HELD: usize = 1 << 26;

/// The free buffers of one length, and how many were asked for since the last [`trim`].
struct Slot<T> {
    free: Vec<Arc<Vec<T>>>,
    demand: usize,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot { free: Vec::new(), demand: 0 }
    }
}

/// The free buffers of one element type, by length, and their total length.
pub struct FreeList<T> {
    by_len: BTreeMap<usize, Slot<T>>,
    held: usize,
}

impl<T> FreeList<T> {
    const fn new() -> Self {
        FreeList { by_len: BTreeMap::new(), held: 0 }
    }
}

/// The free list of one element type (a sealed supertrait of [`Element`](crate::Element)).
pub trait Pooled: Sized + Clone + Default + Send + 'static {
    /// This type's list.
    fn free_list() -> &'static Mutex<FreeList<Self>>;
    /// The empty storage a dropped tensor leaves behind (one per thread and shared, so
    /// leaving it costs no allocation).
    fn empty() -> &'static LocalKey<Arc<Vec<Self>>>;
}

static FREE_F32: Mutex<FreeList<f32>> = Mutex::new(FreeList::new());
static FREE_F64: Mutex<FreeList<f64>> = Mutex::new(FreeList::new());

thread_local! {
    static EMPTY_F32: Arc<Vec<f32>> = Arc::new(Vec::new());
    static EMPTY_F64: Arc<Vec<f64>> = Arc::new(Vec::new());
}

impl Pooled for f32 {
    fn free_list() -> &'static Mutex<FreeList<f32>> {
        &FREE_F32
    }
    fn empty() -> &'static LocalKey<Arc<Vec<f32>>> {
        &EMPTY_F32
    }
}

impl Pooled for f64 {
    fn free_list() -> &'static Mutex<FreeList<f64>> {
        &FREE_F64
    }
    fn empty() -> &'static LocalKey<Arc<Vec<f64>>> {
        &EMPTY_F64
    }
}

/// The list of `T`, locked. Nothing panics while holding it, so a poisoned lock only means
/// a panic elsewhere on that thread; the list itself is whole.
fn list<T: Pooled>() -> MutexGuard<'static, FreeList<T>> {
    T::free_list().lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Storage of exactly `len` elements that the caller alone owns: recycled when the list has
/// one of that length (its contents stale), else new (zeros); or, when the allocator cannot
/// give that much, why not.
pub fn take<T: Pooled>(len: usize) -> Result<Arc<Vec<T>>> {
    let recycled = {
        let mut f = list::<T>();
        let slot = f.by_len.entry(len).or_default();
        slot.demand += 1;
        let arc = slot.free.pop();
        if arc.is_some() {
            f.held -= len;
        }
        arc
    };
    if let Some(arc) = recycled {
        return Ok(arc);
    }
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|e| TensorError::Invalid {
        op: "alloc",
        msg: format!("cannot allocate {len} elements: {e}"),
    })?;
    v.resize(len, T::default());
    Ok(Arc::new(v))
}

/// [`take`], panicking with its message when the memory cannot be had.
#[track_caller]
pub fn take_or_fail<T: Pooled>(len: usize) -> Arc<Vec<T>> {
    ok(take(len))
}

/// Takes `storage` out of its owner (leaving shared empty storage behind) and keeps it for
/// [`take`] when the owner was its only holder and there is room; otherwise it is simply
/// released.
pub fn give<T: Pooled>(storage: &mut Arc<Vec<T>>) {
    let len = storage.len();
    if len == 0 || len > MAX_HELD / 4 || Arc::get_mut(storage).is_none() {
        return;
    }
    let Ok(empty) = T::empty().try_with(Arc::clone) else { return };
    let arc = std::mem::replace(storage, empty);
    let mut f = list::<T>();
    if f.held + len <= MAX_HELD {
        f.held += len;
        f.by_len.entry(len).or_default().free.push(arc);
    }
}

/// Frees the buffers beyond what was asked for since the last call, length by length, so
/// the list holds one step's worth (a training loop calls it once a step, through
/// `Graph::reset`). Without it the list still stops at [`MAX_HELD`]; with it, buffers
/// that come back more often than they are asked for (a batch made by `from_vec` every
/// step, say) do not pile up to that bound.
pub fn trim<T: Pooled>() {
    let mut f = list::<T>();
    let mut freed = 0;
    for (&len, slot) in f.by_len.iter_mut() {
        if slot.free.len() > slot.demand {
            freed += (slot.free.len() - slot.demand) * len;
            slot.free.truncate(slot.demand);
        }
        slot.demand = 0;
    }
    f.held -= freed;
}

/// Fills the list with buffers of `len` elements holding NaN, as a step's stale buffers
/// could: a test then checks no result reads them.
#[cfg(test)]
pub fn poison<T: Pooled + num_traits::Float>(len: usize, count: usize) {
    let mut bufs: Vec<_> = (0..count).map(|_| take_or_fail::<T>(len)).collect();
    for b in &mut bufs {
        Arc::get_mut(b).expect("taken storage has one owner").fill(T::nan());
        give(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Conv2dSpec, Tensor};

    // The list is shared by every test thread, so each test uses lengths no other one does.

    #[test]
    fn a_given_buffer_comes_back_for_its_length_only() {
        let mut a = take_or_fail::<f32>(1237);
        Arc::get_mut(&mut a).unwrap()[0] = 7.0;
        let ptr = Arc::as_ptr(&a);
        give(&mut a);
        assert!(a.is_empty(), "the owner is left with empty storage");
        assert_ne!(Arc::as_ptr(&take_or_fail::<f32>(1236)), ptr, "another length is a new buffer");
        let mut b = take_or_fail::<f32>(1237);
        assert_eq!(Arc::as_ptr(&b), ptr, "the same length gets the buffer back");
        assert_eq!(b[0], 7.0, "stale contents: every caller overwrites them");

        // A trim keeps what was asked for since the last one (this is the only test that
        // trims, so no other thread empties the list under it).
        trim::<f32>();
        let mut extra = Arc::new(vec![0.0f32; 1237]); // made elsewhere, given back here
        give(&mut b);
        give(&mut extra);
        let count = || list::<f32>().by_len.get(&1237).map_or(0, |s| s.free.len());
        assert_eq!(count(), 2);
        let mut c = take_or_fail::<f32>(1237);
        give(&mut c);
        trim::<f32>();
        assert_eq!(count(), 1, "one buffer of this length was asked for since the last trim");
        trim::<f32>();
        assert_eq!(count(), 0, "none since");
    }

    #[test]
    fn shared_or_oversized_storage_is_not_kept() {
        let mut a = take_or_fail::<f64>(1231);
        let other = Arc::clone(&a);
        give(&mut a);
        assert_eq!(a.len(), 1231, "a shared buffer stays with its owner");
        drop(other);
        let mut big = Arc::new(vec![0.0f64; MAX_HELD / 4 + 1]);
        let ptr = Arc::as_ptr(&big);
        give(&mut big);
        assert_eq!(Arc::as_ptr(&big), ptr, "too long to keep");
    }

    /// Every kernel that takes a pooled buffer writes all of it: with the list full of NaN
    /// buffers of the lengths they take, the results are the same bits.
    #[test]
    fn stale_buffers_never_show() {
        let a = Tensor::<f64>::arange(6 * 7).reshape(&[6, 7]).add_scalar(-20.0);
        let b = Tensor::<f64>::arange(7 * 5).reshape(&[7, 5]).mul_scalar(0.5);
        let x = Tensor::<f64>::arange(2 * 3 * 9 * 9).reshape(&[2, 3, 9, 9]).mul_scalar(0.01);
        let w = Tensor::<f64>::ones(&[4, 3, 3, 3]);
        let results = || {
            vec![
                a.exp(),
                &a * &a.narrow(0, 0, 1),
                a.t().contiguous(),
                a.matmul(&b),
                a.sum_axis(0, false),
                a.sum_axis(1, true),
                a.zip_sum_last(&a, |p, q| p * q),
                Tensor::zeros(&[6, 7]),
                x.conv2d(&w, Some(&Tensor::ones(&[4])), Conv2dSpec::new(2, 1)),
                x.conv_transpose2d(&w.reshape(&[3, 4, 3, 3]), None, Conv2dSpec::new(1, 0), [0, 0]),
            ]
        };
        let clean: Vec<Vec<u64>> =
            results().iter().map(|t| t.to_vec().iter().map(|v| v.to_bits()).collect()).collect();
        for len in [7, 42, 30, 6, 35, 486, 2 * 4 * 5 * 5, 27 * 50, 4 * 50, 36 * 81 * 2, 4 * 11 * 11 * 2] {
            poison::<f64>(len, 4);
        }
        let again: Vec<Vec<u64>> =
            results().iter().map(|t| t.to_vec().iter().map(|v| v.to_bits()).collect()).collect();
        assert_eq!(clean, again);
    }
}
