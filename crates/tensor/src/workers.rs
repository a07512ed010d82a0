//! Running a piece of work on the rayon pool with the pool's other workers kept awake.
//!
//! A rayon worker that finds nothing to do goes to sleep, and a kernel that forks wakes it
//! again. A training step at batch 20 is a few hundred microseconds made of parallel
//! sections of tens of microseconds with serial work between them; where waking a thread
//! takes longer than a section (the virtual machines of `docs/performance.md`), the woken
//! worker arrives after the section is done, the second thread does nothing, and its
//! hand-offs make the step slower than on one. [`with_workers_awake`] keeps the other
//! workers looking for jobs for the length of the work, as OpenMP runtimes keep their
//! threads spinning between parallel regions, and has them offer their core to the
//! operating system now and then, so that spinning costs nothing when other processes need
//! the cores.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// How long a kept-awake worker goes on looking after it last found a job. Longer than the
/// serial stretches inside a training step; a worker idle that long goes back to rayon's
/// sleep. A worker that took up the spinning in the middle of a job of its own (while that
/// job waited for a part another worker stole) returns to it once the pool has had nothing
/// for it for this long, so the spinning cannot hold up work it sits on top of for good.
pub const AWAKE_IDLE: Duration = Duration::from_millis(1);

/// Runs `work` on the first worker of the current rayon pool (the global one outside any
/// pool) while the pool's other workers run any job they can find, so that the kernels
/// inside `work` fork to workers that are already running. Returns what `work` returns; a
/// panic in `work` is resumed on the caller.
///
/// The same worker runs every call's `work`, so a training loop that calls this once a step
/// finds the model's weights in that core's cache from the step before. The other workers
/// spin for the length of `work` (and at most [`AWAKE_IDLE`] past their last job): their
/// cores stay busy even when `work` has nothing for them. Results do not depend on it: it
/// changes which thread runs a job, and every kernel splits its work the same way whichever
/// threads run the parts.
///
/// Where spinning cannot help, `work` runs on a worker with the others left to rayon's
/// sleep: on a pool of one thread, and on a pool with more threads than the process has
/// cores (spinners would then take the cores the work needs). Inside `work`, a nested call
/// is `work` itself.
pub fn with_workers_awake<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    if AWAKE.with(Cell::get) {
        return work();
    }
    if !spinning_helps(rayon::current_num_threads(), cores()) {
        return rayon::scope(|_| work());
    }
    let done = AtomicBool::new(false);
    let work = Mutex::new(Some(work));
    let mut results = rayon::broadcast(|worker| {
        if worker.index() != 0 {
            spin_until(&done);
            return None;
        }
        let work = work.lock().unwrap_or_else(PoisonError::into_inner).take()?;
        let _awake = Awake::enter(&done);
        Some(work())
    });
    results.swap_remove(0).expect("the pool's first worker runs the work")
}

/// Whether a pool of `threads` workers on `cores` cores gains from spinning workers.
fn spinning_helps(threads: usize, cores: usize) -> bool {
    threads > 1 && threads <= cores
}

/// The cores this process may run on (read once).
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

thread_local! {
    /// Whether this thread is running the work of a [`with_workers_awake`] call.
    static AWAKE: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as running a call's work until dropped, then tells the spinning
/// workers the work is done and restores the mark it found (a worker may take up another
/// call's work while it waits inside its own). Dropped also when the work panics.
struct Awake<'a> {
    outer: bool,
    done: &'a AtomicBool,
}

impl<'a> Awake<'a> {
    fn enter(done: &'a AtomicBool) -> Self {
        Awake { outer: AWAKE.with(|a| a.replace(true)), done }
    }
}

impl Drop for Awake<'_> {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
        AWAKE.with(|a| a.set(self.outer));
    }
}

/// Idle turns of a spinning worker between two offers of its core to the operating system
/// (`sched_yield`). With nothing else to run the offer returns at once; with another
/// process's threads waiting (two training runs of two threads each on two cores, say) they
/// get the core instead of a worker that has nothing to do.
const SPINS_PER_OS_YIELD: u32 = 64;

/// Runs the pool's jobs as they come until `done` is set, or until none has come for
/// [`AWAKE_IDLE`].
fn spin_until(done: &AtomicBool) {
    let mut last_job = Instant::now();
    let mut idle = 0u32;
    while !done.load(Ordering::Acquire) {
        if rayon::yield_now() == Some(rayon::Yield::Executed) {
            last_job = Instant::now();
            idle = 0;
        } else if last_job.elapsed() > AWAKE_IDLE {
            return;
        } else {
            idle = idle.wrapping_add(1);
            if idle.is_multiple_of(SPINS_PER_OS_YIELD) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a pool")
    }

    /// A sum split by `rayon::join` down to single elements: every fork is a job a spinning
    /// worker may take.
    fn forked_sum(v: &[u64]) -> u64 {
        match v.len() {
            0 => 0,
            1 => v[0],
            n => {
                let (a, b) = v.split_at(n / 2);
                let (x, y) = rayon::join(|| forked_sum(a), || forked_sum(b));
                x + y
            }
        }
    }

    #[test]
    fn spinning_only_where_each_worker_has_a_core() {
        assert!(!spinning_helps(1, 2));
        assert!(spinning_helps(2, 2));
        assert!(spinning_helps(2, 64));
        assert!(!spinning_helps(4, 2));
    }

    #[test]
    fn returns_the_works_result_on_pools_of_any_size() {
        let v: Vec<u64> = (1..=1000).collect();
        for threads in [1, 2, 3, 8] {
            let got = pool(threads).install(|| with_workers_awake(|| forked_sum(&v)));
            assert_eq!(got, 500_500, "{threads} threads");
            // Called from outside the pool, the work still runs on one of its workers.
            let pool = pool(threads);
            let on = pool.install(|| with_workers_awake(rayon::current_thread_index));
            assert!(on.is_some_and(|i| i < threads), "{threads} threads: {on:?}");
        }
    }

    #[test]
    fn the_first_worker_runs_the_work_where_spinning_helps() {
        if !spinning_helps(2, cores()) {
            return;
        }
        let pool = pool(2);
        for _ in 0..20 {
            assert_eq!(pool.install(|| with_workers_awake(rayon::current_thread_index)), Some(0));
        }
    }

    #[test]
    fn nested_calls_run_their_work_in_place() {
        let pool = pool(2);
        let (outer, inner, inner_awake) = pool.install(|| {
            with_workers_awake(|| {
                let outer = rayon::current_thread_index();
                let (inner, awake) =
                    with_workers_awake(|| (rayon::current_thread_index(), AWAKE.with(Cell::get)));
                (outer, inner, awake)
            })
        });
        assert_eq!(outer, inner);
        assert_eq!(inner_awake, spinning_helps(2, cores()));
        // The mark is cleared once the outer work returns.
        pool.broadcast(|_| assert!(!AWAKE.with(Cell::get)));
    }

    #[test]
    fn a_panic_in_the_work_reaches_the_caller_and_frees_the_pool() {
        let pool = pool(2);
        let caught =
            catch_unwind(AssertUnwindSafe(|| pool.install(|| with_workers_awake(|| panic!("in the work")))));
        let message = caught.expect_err("the panic is resumed");
        assert_eq!(message.downcast_ref::<&str>(), Some(&"in the work"));
        // The pool works afterwards, and the worker that panicked is no longer marked.
        let v: Vec<u64> = (0..100).collect();
        assert_eq!(pool.install(|| with_workers_awake(|| forked_sum(&v))), 4950);
        pool.broadcast(|_| assert!(!AWAKE.with(Cell::get)));
    }

    #[test]
    fn calls_from_many_threads_at_once_all_finish() {
        let pool = pool(2);
        let v: Vec<u64> = (1..=2000).collect();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|_| {
                    s.spawn(|| {
                        (0..50).map(|_| pool.install(|| with_workers_awake(|| forked_sum(&v)))).sum::<u64>()
                    })
                })
                .collect();
            for h in handles {
                assert_eq!(h.join().expect("no panic"), 50 * 2_001_000);
            }
        });
    }
}
