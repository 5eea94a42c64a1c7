//! Mistake: the threads put their values in a shared table and their handles are dropped,
//! which detaches them; the caller returns whatever the table holds at that moment.
use std::sync::{Arc, Mutex};
use std::thread;

/// Runs `work(i)` on a thread of its own for each `i` in `0..threads` and returns the values
/// in index order; see the exercise for the contract.
pub fn spawn_join<T, F>(threads: usize, work: F) -> Vec<T>
where
    F: Fn(usize) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    let work = Arc::new(work);
    let table: Arc<Mutex<Vec<Option<T>>>> =
        Arc::new(Mutex::new((0..threads).map(|_| None).collect()));
    for i in 0..threads {
        let work = Arc::clone(&work);
        let table = Arc::clone(&table);
        // The mistake: the JoinHandle is dropped at once, which detaches the thread, and
        // nobody waits for it.
        thread::spawn(move || {
            let value = work(i);
            table.lock().unwrap()[i] = Some(value);
        });
    }
    let mut table = table.lock().unwrap();
    table.iter_mut().filter_map(Option::take).collect()
}
