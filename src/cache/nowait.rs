//! Reading a whole cache file on an async worker, but only when the kernel can answer from
//! memory: the path from the dentry cache (`openat2` with `RESOLVE_CACHED`, Linux 5.12) and the
//! bytes from the page cache (`preadv2` with `RWF_NOWAIT`). Either one would have to wait for
//! the disk → [`Nowait::WouldBlock`], and the caller goes to the blocking pool as before.
//!
//! A disk hit is then a few syscalls instead of a hand-off to a blocking thread and back, which
//! on a busy machine costs more than the read itself. Disk I/O still never runs on an async
//! worker: what would block is refused by the kernel, not waited for. On other systems every
//! read is `WouldBlock`.

use std::path::Path;

/// What a non-blocking read found.
#[derive(Debug)]
pub enum Nowait {
    /// The file's whole content.
    Bytes(Vec<u8>),
    /// No such file, known from cached lookups alone (a miss, no hand-off needed).
    Absent,
    /// Answering needs the disk, or this system cannot say: read on the blocking pool.
    WouldBlock,
}

/// Files larger than this are left to the blocking pool (one read of a huge variant on a
/// worker would stall its other tasks even from the page cache).
const MAX_NOWAIT: u64 = 4 << 20;

#[cfg(target_os = "linux")]
pub fn read(path: &Path) -> Nowait {
    use rustix::{
        fs::{fstat, openat2, Mode, OFlags, ResolveFlags, CWD},
        io::{preadv2, Errno, ReadWriteFlags},
    };
    use std::io::IoSliceMut;

    let fd = match openat2(
        CWD,
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
        ResolveFlags::CACHED,
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Nowait::Absent,
        // EAGAIN (lookup not cached), ENOSYS/EINVAL (older kernel), anything else.
        Err(_) => return Nowait::WouldBlock,
    };
    let Ok(stat) = fstat(&fd) else {
        return Nowait::WouldBlock;
    };
    let size = u64::try_from(stat.st_size).unwrap_or(u64::MAX);
    if size > MAX_NOWAIT {
        return Nowait::WouldBlock;
    }
    let mut buf = vec![0u8; size as usize];
    let mut at = 0;
    while at < buf.len() {
        let mut slice = [IoSliceMut::new(&mut buf[at..])];
        match preadv2(&fd, &mut slice, at as u64, ReadWriteFlags::NOWAIT) {
            Ok(0) | Err(_) => return Nowait::WouldBlock,
            Ok(n) => at += n,
        }
    }
    Nowait::Bytes(buf)
}

#[cfg(not(target_os = "linux"))]
pub fn read(_path: &Path) -> Nowait {
    Nowait::WouldBlock
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_cached_file_and_knows_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        // Just written: its pages and dentry are in memory, so a Linux kernel answers without
        // blocking; elsewhere the caller is told to use the blocking pool.
        // Just written, so its pages and dentry are in memory: a Linux kernel with NOWAIT
        // support answers at once; any other system may send the caller to the blocking pool.
        match read(&path) {
            Nowait::Bytes(b) => assert_eq!(b, content),
            Nowait::WouldBlock => {}
            Nowait::Absent => panic!("the file exists"),
        }
        assert!(!matches!(
            read(&dir.path().join("missing")),
            Nowait::Bytes(_)
        ));
        std::fs::write(&path, b"").unwrap();
        match read(&path) {
            Nowait::Bytes(b) => assert!(b.is_empty()),
            Nowait::WouldBlock => {}
            Nowait::Absent => panic!("the file exists"),
        }
    }
}
