//! io_models/poll_server: a single-threaded echo server on poll(2) (I/O 多路复用).
//!
//! Each test forks the server into a child process on a listener the test made (127.0.0.1,
//! port 0, backlog 512), drives it with real client sockets, reads its state from `/proc`
//! (fd table, threads, CPU time, the system call it sleeps in), and kills and reaps it at the
//! end, checking that no process and no listening socket is left (the shared driver,
//! `support/echo_clients.rs`).
//!
//! The contract, clause by clause, and the test that checks each:
//! - `serve` echoes every byte back to the client that sent it, in order, to many clients at
//!   once, whatever the chunking and interleaving; a client that half-closes gets the rest of
//!   its echo and then end of file; a client that closes early or resets is closed (its socket
//!   gone from the server's fd table) and the others are served on; the server never returns
//!   or panics while it serves (`survives_random_client_scripts`, proptest);
//! - a burst of 300 connects queued before the server accepts any is fully accepted and
//!   served (`a_burst_of_connects_is_fully_served`);
//! - 1 MiB sent by a client that reads slowly comes back whole: what write(2) did not take is
//!   kept and sent later (`a_slow_reader_gets_every_byte_of_1_mib`);
//! - a flooding client does not starve the others (`a_flooding_client_does_not_starve_others`);
//! - an idle server sleeps in poll: almost no CPU over an idle second, after clients went
//!   idle, half-closed and reset: a reset client's POLLHUP/POLLERR is acted on
//!   (`an_idle_server_sleeps`);
//! - 1100 clients connected at the same time are all served (`more_than_1024_clients_at_once`;
//!   RLIMIT_NOFILE raised within its hard limit, skipped with a note when that is too low);
//! - the server is one process with one thread (`the_server_is_single_threaded`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/io_models/poll_server.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod poll_server;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/io_models/poll_server.rs"]
mod poll_server;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/io_models/poll_server.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod poll_server;
use poll_server::*;

#[path = "support/echo_clients.rs"]
mod echo_clients;
use echo_clients::{Client, Server, TEST_DEADLINE, echo_then_eof_all, round_trips};

use std::time::Duration;

use oskata_harness::{Isolation, procfs};

fn isolated(body: impl FnOnce()) {
    Isolation::new().deadline(TEST_DEADLINE).run(body);
}

#[test]
fn survives_random_client_scripts() {
    isolated(|| echo_clients::scripts(serve, 24, 8));
}

#[test]
fn a_burst_of_connects_is_fully_served() {
    isolated(|| echo_clients::burst(serve, 300));
}

#[test]
fn a_slow_reader_gets_every_byte_of_1_mib() {
    isolated(|| echo_clients::big_slow(serve));
}

#[test]
fn a_flooding_client_does_not_starve_others() {
    isolated(|| echo_clients::fairness(serve, 3, 10, Duration::from_secs(2)));
}

#[test]
fn an_idle_server_sleeps() {
    isolated(|| echo_clients::idle_cpu(serve));
}

#[test]
fn more_than_1024_clients_at_once() {
    isolated(|| echo_clients::many_clients(serve, 1100));
}

#[test]
fn the_server_is_single_threaded() {
    isolated(|| {
        let mut s = Server::spawn(serve);
        let mut clients: Vec<Client> = (0..4).map(|_| s.connect()).collect();
        round_trips(&mut s, &mut clients, &[0, 1, 2, 3], b"are you one thread?");
        let tasks = procfs::threads(s.pid()).unwrap_or_default();
        if tasks.len() != 1 {
            let ev = s.evidence();
            s.fail(format!(
                "the server has {} threads serving 4 clients ({tasks:?} in /proc/{}/task): a poll server is one \
                 thread that waits for all clients at once, not a thread per client\n{ev}",
                tasks.len(),
                s.pid()
            ));
        }
        let kids = procfs::children(s.pid());
        if !kids.is_empty() {
            let ev = s.evidence();
            s.fail(format!(
                "the server forked children {kids:?}: it must serve every client itself\n{ev}"
            ));
        }
        echo_then_eof_all(&mut s, &mut clients);
        s.stop();
    });
}
