//! A test executable as the build left it, and the checks that it still is: in full (its
//! bytes hashed again) before it is listed, and by its metadata before each of its tests runs. Student code runs inside test binaries, so a
//! test of one exercise could overwrite another exercise's binary with one that reports a
//! pass; a binary that changed after the build is never run.
//!
//! The identity is the file's device, inode, size, modification and status-change times, and
//! a hash of its bytes. The status-change time (ctime) cannot be set back by an unprivileged
//! process, so a write in place, a `touch -d` and a rename over the file all change it; the
//! hash covers file systems whose timestamps are too coarse to tell.
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// How much of the file is read at a time: a multiple of the hash's 32-byte block, small
/// enough to stay in the CPU cache between the copy and the hash.
const CHUNK: usize = 1 << 16;

/// A test executable and its identity when it was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    /// Where it is.
    pub path: PathBuf,
    identity: Identity,
}

/// What a file was at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    hash: u64,
}

impl Binary {
    /// Records what the executable at `path` is now.
    pub fn record(path: PathBuf) -> io::Result<Binary> {
        let identity = identity(&path)?;
        Ok(Binary { path, identity })
    }

    /// `Ok` while the file at the path still has the recorded device, inode, size and times;
    /// otherwise the message that fails its exercise. Cheap: one stat(2), made before each test.
    pub fn check(&self) -> Result<(), String> {
        self.compare(metadata(&self.path).map(|now| Identity {
            hash: self.identity.hash,
            ..now
        }))
    }

    /// Like [`Binary::check`], and the bytes hashed again too: made once, before listing.
    pub fn verify(&self) -> Result<(), String> {
        self.compare(identity(&self.path))
    }

    fn compare(&self, now: io::Result<Identity>) -> Result<(), String> {
        let path = self.path.display();
        match now {
            Ok(now) if now == self.identity => Ok(()),
            Ok(_) => Err(format!(
                "the test binary {path} changed after it was built (something replaced it): \
                 rebuild with cargo grade"
            )),
            Err(e) => Err(format!(
                "the test binary {path} changed after it was built (it cannot be read now: \
                 {e}): rebuild with cargo grade"
            )),
        }
    }
}

/// The metadata part of the identity of the file at `path` (its hash left 0).
fn metadata(path: &Path) -> io::Result<Identity> {
    Ok(of_metadata(&std::fs::metadata(path)?, 0))
}

/// The identity of the file at `path`, its metadata and bytes read through one open file.
fn identity(path: &Path) -> io::Result<Identity> {
    let mut file = File::open(path)?;
    let meta = file.metadata()?;
    Ok(of_metadata(&meta, hash(&mut file)?))
}

/// An identity from a file's metadata and the hash of its bytes.
fn of_metadata(meta: &std::fs::Metadata, hash: u64) -> Identity {
    Identity {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.len(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        ctime: (meta.ctime(), meta.ctime_nsec()),
        hash,
    }
}

/// A fast non-cryptographic 64-bit hash of everything `input` yields: four lanes of
/// xor-multiply-rotate over little-endian words, folded with the length. It tells a changed
/// file from its original, not a crafted collision from it (the timestamps do that).
fn hash(input: &mut impl Read) -> io::Result<u64> {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut lanes = [K, K.rotate_left(16), K.rotate_left(32), K.rotate_left(48)];
    let mut buf = vec![0u8; CHUNK];
    let mut len = 0u64;
    loop {
        let n = fill(input, &mut buf)?;
        len += n as u64;
        // The last block of the file is padded with zeros; the length tells the padding apart.
        let padded = n.div_ceil(32) * 32;
        buf[n..padded].fill(0);
        for block in buf[..padded].chunks_exact(32) {
            for (lane, word) in lanes.iter_mut().zip(block.chunks_exact(8)) {
                let w = u64::from_le_bytes(word.try_into().expect("8 bytes"));
                *lane = (*lane ^ w).wrapping_mul(K).rotate_left(31);
            }
        }
        if n < buf.len() {
            break;
        }
    }
    let mut h = len.wrapping_mul(K);
    for lane in lanes {
        h = mix(h ^ lane);
    }
    Ok(h)
}

/// Reads until `buf` is full or the input ends; how many bytes it read.
fn fill(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// SplitMix64's finaliser: every input bit reaches every output bit.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(bytes: &[u8]) -> u64 {
        hash(&mut &bytes[..]).unwrap()
    }

    #[test]
    fn the_hash_tells_contents_apart() {
        let big: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i * 7 % 251) as u8).collect();
        let mut flipped = big.clone();
        flipped[2 * CHUNK + 5] ^= 1;
        let mut padded = big.clone();
        padded.push(0);
        let hashes = [h(b""), h(b"\0"), h(b"a"), h(&big), h(&flipped), h(&padded)];
        for (i, a) in hashes.iter().enumerate() {
            for b in &hashes[i + 1..] {
                assert_ne!(a, b, "{hashes:x?}");
            }
        }
        assert_eq!(h(&big), h(&big.clone()));
    }

    #[test]
    fn a_rewrite_in_place_with_its_old_mtime_is_a_change() {
        let path = std::env::temp_dir().join(format!("oskata-binary-{}", std::process::id()));
        std::fs::write(&path, b"#!/bin/sh\necho real\n").unwrap();
        let bin = Binary::record(path.clone()).unwrap();
        assert_eq!(bin.check(), Ok(()));
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();

        // Same size, same inode, the old mtime put back: only ctime and the hash differ.
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        std::io::Write::write_all(&mut &f, b"#!/bin/sh\necho fake\n").unwrap();
        f.set_modified(mtime).unwrap();
        drop(f);
        assert_eq!(bin.check(), bin.verify());
        let e = bin.check().unwrap_err();
        assert_eq!(
            e,
            format!(
                "the test binary {} changed after it was built (something replaced it): rebuild \
                 with cargo grade",
                path.display()
            )
        );

        std::fs::remove_file(&path).unwrap();
        let e = bin.check().unwrap_err();
        assert!(
            e.contains("cannot be read now") && e.contains("rebuild with cargo grade"),
            "{e}"
        );
    }
}
