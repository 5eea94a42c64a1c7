//! # A blocking echo server (阻塞 I/O), one thread per connection
//!
//! Reference solution. See `exercises/io_models/blocking_server.rs` for the lesson.
use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::thread;

/// How much one read(2) asks for.
const CHUNK: usize = 8192;

/// Echoes everything read from `stream` back to it until the client ends its side (read
/// returns 0), then closes the connection; returns how many bytes were echoed.
pub fn echo(mut stream: TcpStream) -> io::Result<u64> {
    let mut buf = [0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut done = 0;
        while done < n {
            // The mistake: write(2) on the fd, which raises SIGPIPE on a reset connection ...
            match nix::unistd::write(&stream, &buf[done..n]) {
                Ok(k) => done += k,
                // The mistake: ... and every error retried as if it were EINTR.
                Err(_) => continue,
            }
        }
        total += n as u64;
    }
}

/// Accepts connections on `listener` for ever, each served by [`echo`] on a thread of its own.
/// Returns only when accept(2) fails with an error that is not the client's.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    loop {
        let stream = match listener.accept() {
            Ok((stream, _peer)) => stream,
            Err(e) if transient(&e) => continue,
            Err(e) => return Err(e),
        };
        // The thread is detached (its handle dropped): it ends when its client does, and the
        // stream, moved into it, is closed when echo returns, error or not.
        thread::spawn(move || {
            let _ = echo(stream);
        });
    }
}

/// Errors of accept(2) that concern one connection, not the listener: try again.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR | libc::ECONNABORTED | libc::EPROTO | libc::EPERM)
    )
}
