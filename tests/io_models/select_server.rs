//! io_models/select_server: a single-threaded echo server on select(2) (I/O 多路复用).
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
//!   its echo and then end of file; a client that closes early or resets is closed and the
//!   others are served on; the server never returns or panics while it serves
//!   (`survives_random_client_scripts`, proptest);
//! - the newest client, the one with the highest descriptor, is served: nfds is the highest
//!   descriptor plus one (`the_newest_client_is_served`);
//! - every client is served turn after turn, not only the ones that were ready the first
//!   time: the sets are built afresh before each select (`clients_are_served_turn_after_turn`);
//! - a burst of 300 connects queued before the server accepts any is fully accepted and
//!   served (`a_burst_of_connects_is_fully_served`);
//! - 1 MiB sent by a client that reads slowly comes back whole: what write(2) did not take is
//!   kept and sent later (`a_slow_reader_gets_every_byte_of_1_mib`);
//! - a flooding client does not starve the others (`a_flooding_client_does_not_starve_others`);
//! - an idle server sleeps in select: almost no CPU over an idle second, after clients went
//!   idle, half-closed and reset (`an_idle_server_sleeps`);
//! - a client whose descriptor would be FD_SETSIZE (1024) or more is refused (its connection
//!   closed at once), while a client at 1023 is served, and the server serves on
//!   (`a_descriptor_at_fd_setsize_is_refused_not_a_crash`);
//! - the server is one process with one thread (`the_server_is_single_threaded`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/io_models/select_server.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod select_server;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/io_models/select_server.rs"]
mod select_server;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/io_models/select_server.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod select_server;
use select_server::*;

#[path = "support/echo_clients.rs"]
mod echo_clients;
use echo_clients::{Client, Server, TEST_DEADLINE, echo_then_eof_all, round_trips};

use std::time::{Duration, Instant};

use oskata_harness::{Isolation, procfs, scaled};

fn isolated(body: impl FnOnce()) {
    Isolation::new().deadline(TEST_DEADLINE).run(body);
}

#[test]
fn survives_random_client_scripts() {
    isolated(|| echo_clients::scripts(serve, 24, 8));
}

#[test]
fn the_newest_client_is_served() {
    isolated(|| {
        let mut s = Server::spawn(serve);
        s.set_lesson(
            "the client with the highest descriptor was not served: select(2) looks at descriptors 0 to nfds - 1, \
             so nfds is the highest descriptor in the sets plus one",
        );
        let mut clients = vec![s.connect()];
        round_trips(&mut s, &mut clients, &[0], b"the only client");
        clients.push(s.connect());
        clients.push(s.connect());
        round_trips(&mut s, &mut clients, &[2], b"the newest client");
        round_trips(&mut s, &mut clients, &[1, 0], b"the older ones");
        echo_then_eof_all(&mut s, &mut clients);
        s.stop();
    });
}

#[test]
fn clients_are_served_turn_after_turn() {
    isolated(|| {
        let mut s = Server::spawn(serve);
        s.set_lesson(
            "a client was served once and then never again: select(2) overwrites its sets with the descriptors \
             that are ready, so the sets must be built afresh (every client, and the listener) before each call",
        );
        let mut clients: Vec<Client> = (0..3).map(|_| s.connect()).collect();
        for turn in 0..4 {
            for i in [0, 1, 2, 1, 0] {
                round_trips(
                    &mut s,
                    &mut clients,
                    &[i],
                    format!("turn {turn}").as_bytes(),
                );
            }
        }
        clients.push(s.connect());
        round_trips(&mut s, &mut clients, &[3, 0], b"one more after them");
        echo_then_eof_all(&mut s, &mut clients);
        s.stop();
    });
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
fn a_descriptor_at_fd_setsize_is_refused_not_a_crash() {
    isolated(|| {
        let limit = 1024 + 64;
        if !echo_clients::raise_nofile(limit) {
            return;
        }
        // In the server's process: the next descriptor it gets is 1023, the one after 1024.
        let mut s = Server::spawn_with(|| echo_clients::occupy_fds_below(1023), serve);
        let mut clients = vec![s.connect()];
        round_trips(
            &mut s,
            &mut clients,
            &[0],
            b"at descriptor 1023, the last one select can watch",
        );
        let fds = s.sockets().unwrap_or_default();
        if !fds.contains(&1023) {
            let ev = s.evidence();
            s.fail(format!(
                "the test meant the server's first client to be descriptor 1023, but its sockets are {fds:?}\n{ev}"
            ));
        }
        // The second client's descriptor would be 1024 = FD_SETSIZE.
        s.set_lesson(
            "a client whose descriptor would be 1024 = FD_SETSIZE must be refused (closed at once) and the others \
             served on: select cannot watch it, nix's FdSet::insert panics on such a descriptor (and C's FD_SET \
             writes past the set), so check it before you insert it",
        );
        clients.push(s.connect());
        let _ = clients[1].try_send(b"at descriptor 1024: select cannot watch me");
        let start = Instant::now();
        loop {
            clients[1].drain();
            if clients[1].eof || clients[1].error.is_some() {
                s.check_alive_settled(
                    "refusing a client whose descriptor would be 1024 = FD_SETSIZE",
                );
                break;
            }
            s.check_alive(
                "connecting a client whose descriptor would be 1024 = FD_SETSIZE (nix's FdSet::insert panics on \
                 such a descriptor: check it before you insert it)",
            );
            if start.elapsed() > scaled(echo_clients::SETTLE) {
                let ev = s.evidence();
                s.fail(format!(
                    "a client whose descriptor in the server would be 1024 = FD_SETSIZE was neither served nor \
                     refused after {:?} ({}): select cannot watch it, so the server must close it at once and \
                     serve the others\n{ev}",
                    start.elapsed(),
                    clients[1].summary()
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if !clients[1].got.is_empty() {
            let ev = s.evidence();
            s.fail(format!(
                "a client at descriptor 1024 = FD_SETSIZE got an echo ({}): select cannot watch that descriptor \
                 (an fd_set holds 0..1023; FD_SET beyond it writes past the set)\n{ev}",
                clients[1].summary()
            ));
        }
        // The server serves on: the first client still, and a new one at 1023 once it is free.
        round_trips(
            &mut s,
            &mut clients,
            &[0],
            b"still served after the refusal",
        );
        let mut first = clients.remove(0);
        first.close(false);
        s.wait_clients_closed(0, "the client at descriptor 1023 closed");
        let mut again = vec![s.connect()];
        round_trips(&mut s, &mut again, &[0], b"at descriptor 1023 again");
        echo_then_eof_all(&mut s, &mut again);
        s.stop();
    });
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
                "the server has {} threads serving 4 clients ({tasks:?} in /proc/{}/task): a select server is one \
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
