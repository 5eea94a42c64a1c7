//! A global allocator for a test binary that checks where memory is allocated: the system
//! allocator, calling a hook first on every call (alloc, alloc_zeroed, dealloc, realloc).
//!
//! A test binary holds one exercise's tests, so its `#[global_allocator]` watches that
//! exercise alone:
//!
//! ```no_run
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! static CALLS: AtomicUsize = AtomicUsize::new(0);
//! fn note() {
//!     CALLS.fetch_add(1, Ordering::SeqCst);
//! }
//! #[global_allocator]
//! static ALLOCATOR: oskata_harness::allocator::Noting = oskata_harness::allocator::Noting(note);
//! ```
//!
//! The hook runs inside the allocator, in every thread and every forked copy of the process:
//! it must not allocate, lock or panic (atomics and async-signal-safe system calls only), and
//! it should return at once unless its test has armed it.
use std::alloc::{GlobalAlloc, Layout, System};

/// The system allocator, calling the hook it holds before each allocator call.
pub struct Noting(pub fn());

// SAFETY: every method forwards to the system allocator with the caller's arguments unchanged;
// the hook, by this module's contract, does not allocate.
unsafe impl GlobalAlloc for Noting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        (self.0)();
        // SAFETY: the caller's contract for `alloc`, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        (self.0)();
        // SAFETY: the caller's contract for `alloc_zeroed`, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        (self.0)();
        // SAFETY: the caller's contract for `dealloc`, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        (self.0)();
        // SAFETY: the caller's contract for `realloc`, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
