//! # Splitting work over threads, and joining them (创建线程与等待线程结束)
//!
//! A thread (线程) is a second flow of control inside the same process: same memory, same open
//! files, its own stack and registers. Starting one is `pthread_create(3)` underneath, and
//! `std::thread::spawn` in Rust; waiting for it to finish and taking its return value is
//! `pthread_join(3)`, `JoinHandle::join` in Rust. A thread's join is to the thread what
//! `waitpid` is to a child process: the one way to know it has finished, and the way its
//! result comes back.
//!
//! To split work (任务划分) over N threads, start all N first, each on its own share, and only
//! then join them one by one: joining each thread right after starting it waits for it to
//! finish before the next one starts, and the threads run one at a time. Dropping a
//! `JoinHandle` without joining it *detaches* the thread (分离, `pthread_detach(3)`): it runs
//! on with nobody waiting for it, and whatever it computes is lost to a caller that has
//! already moved on.
//!
//! The tests watch your threads from the kernel's side: each thread of a process has its own
//! entry in `/proc/self/task`, and `/proc/self/task/<tid>/syscall` shows the caller asleep in
//! futex(2) while it waits in `pthread_join` (glibc's join sleeps on a word in the joined
//! thread's descriptor, which sits at the top of that thread's stack).
//!
//! In Rust: `std::thread::spawn` (its closure must be `'static`: share `work` with an
//! `std::sync::Arc`), `JoinHandle::join`, or `std::thread::scope`.
//!
//! Read: `man 3 pthread_create`, `man 3 pthread_join`, `man 3 pthread_detach`, `man 7 pthreads`.

/// Runs `work(0)`, `work(1)`, ..., `work(threads - 1)`, each on a thread of its own, and
/// returns their values in that order.
///
/// All `threads` threads are started before any is joined, so that they run at the same time;
/// then each is joined and its value, the thread's return value, taken from the join. When
/// `spawn_join` returns, every thread it started has been joined. `work` is shared by all the
/// threads. A `work` that panics makes `spawn_join` panic too.
pub fn spawn_join<T, F>(_threads: usize, _work: F) -> Vec<T>
where
    F: Fn(usize) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    todo!()
}
