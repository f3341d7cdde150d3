//! The disk tier: one file per entry under `cache.dir`, an LRU index bounded by
//! `cache.disk_bytes`, and a lock file so two processes never share a directory.
//!
//! Layout (see `layout`): `{dir}/{g:2}/{g}/o` for an original and `{dir}/{g:2}/{g}/v-{k}` for
//! its variants, where `g` is the 128-bit hash of the original's key and `k` of the variant's:
//! purging an original removes one directory. Every write goes to `{dir}/tmp` and is renamed into place,
//! so a `kill -9` leaves either the old file, the new one, or a temp file swept at start-up;
//! every read verifies the entry (see `entry`) and removes what fails. All methods but
//! [`Disk::get_nowait`] block: the caller runs them on the blocking pool, never on an async
//! worker; `get_nowait` only reads what the kernel can serve from memory (see `nowait`).

use super::{
    entry::Entry,
    layout,
    nowait::{self, Nowait},
};
use lru::LruCache;
use std::{
    fs::{self, File},
    io::{self, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

#[derive(Debug)]
struct Index {
    lru: LruCache<PathBuf, u64>,
    total: u64,
}

#[derive(Debug)]
pub struct Disk {
    root: PathBuf,
    max_bytes: u64,
    index: Mutex<Index>,
    /// Held for the life of the process: the directory's exclusive lock.
    _lock: File,
}

impl Disk {
    /// Opens (creating) the directory, takes its lock, sweeps temp files left by a crash, and
    /// rebuilds the LRU index in the background so start-up stays fast with many entries.
    pub fn open(root: &Path, max_bytes: u64) -> io::Result<Arc<Disk>> {
        fs::create_dir_all(root.join("tmp"))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join(".lock"))?;
        lock.try_lock().map_err(|_| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "cache directory {} is in use by another imgrelay process",
                    root.display()
                ),
            )
        })?;
        for tmp in fs::read_dir(root.join("tmp"))?.flatten() {
            let _ = fs::remove_file(tmp.path());
        }
        let disk = Arc::new(Disk {
            root: root.to_path_buf(),
            max_bytes,
            index: Mutex::new(Index {
                lru: LruCache::unbounded(),
                total: 0,
            }),
            _lock: lock,
        });
        let d = disk.clone();
        std::thread::Builder::new()
            .name("imgrelay-cache-index".into())
            .spawn(move || d.rebuild_index())?;
        Ok(disk)
    }

    fn path(&self, group: &str, key: &str) -> PathBuf {
        self.root.join(layout::entry_path(group, key))
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads and verifies `key`; a bad file is removed and reads as a miss.
    pub fn get(&self, group: &str, key: &str) -> Option<Entry> {
        let path = self.path(group, key);
        let bytes = fs::read(&path).ok()?;
        match Entry::decode_owned(bytes.into(), key) {
            Some(entry) => {
                self.index().lru.promote(&path);
                Some(entry)
            }
            None => {
                tracing::warn!(path = %path.display(), "removing a corrupt cache file");
                let _ = fs::remove_file(&path);
                let mut idx = self.index();
                if let Some(size) = idx.lru.pop(&path) {
                    idx.total = idx.total.saturating_sub(size);
                }
                None
            }
        }
    }

    /// [`Disk::get`] on an async worker, if the kernel can answer from memory: `Some(hit or
    /// miss)`, or `None` when the caller must run [`Disk::get`] on the blocking pool (also for
    /// a file that fails verification, which `get` then removes). The LRU promotion is skipped
    /// when the index is busy (being rebuilt) rather than waited for.
    pub fn get_nowait(&self, group: &str, key: &str) -> Option<Option<Entry>> {
        let path = self.path(group, key);
        match nowait::read(&path) {
            Nowait::Absent => Some(None),
            Nowait::WouldBlock => None,
            Nowait::Bytes(bytes) => {
                let entry = Entry::decode_owned(bytes.into(), key)?;
                if let Ok(mut idx) = self.index.try_lock() {
                    idx.lru.promote(&path);
                }
                Some(Some(entry))
            }
        }
    }

    /// Writes `entry` atomically (temp file, then rename) and evicts down to the bound.
    pub fn put(&self, group: &str, key: &str, entry: &Entry) -> io::Result<()> {
        let bytes = entry.encode(key);
        let size = bytes.len() as u64;
        if size > self.max_bytes {
            return Ok(());
        }
        let path = self.path(group, key);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let mut tmp = tempfile::NamedTempFile::new_in(self.root.join("tmp"))?;
        tmp.write_all(&bytes)?;
        tmp.persist(&path).map_err(|e| e.error)?;
        let evicted = {
            let mut idx = self.index();
            if let Some(old) = idx.lru.put(path, size) {
                idx.total = idx.total.saturating_sub(old);
            }
            idx.total += size;
            self.evict(&mut idx)
        };
        for p in evicted {
            let _ = fs::remove_file(p);
        }
        Ok(())
    }

    fn evict(&self, idx: &mut Index) -> Vec<PathBuf> {
        let mut out = Vec::new();
        while idx.total > self.max_bytes {
            let Some((path, size)) = idx.lru.pop_lru() else {
                break;
            };
            idx.total = idx.total.saturating_sub(size);
            out.push(path);
        }
        out
    }

    /// Removes an original and every variant of it; a source with nothing on disk is no error,
    /// a directory that cannot be removed is one naming it.
    pub fn purge(&self, group: &str) -> io::Result<()> {
        let dir = self.path(group, group);
        let Some(dir) = dir.parent() else {
            return Ok(());
        };
        {
            let mut idx = self.index();
            let gone: Vec<PathBuf> = idx
                .lru
                .iter()
                .filter(|(p, _)| p.starts_with(dir))
                .map(|(p, _)| p.clone())
                .collect();
            for p in gone {
                if let Some(size) = idx.lru.pop(&p) {
                    idx.total = idx.total.saturating_sub(size);
                }
            }
        }
        match fs::remove_dir_all(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io::Error::new(
                e.kind(),
                format!("cannot remove {}: {e}", dir.display()),
            )),
            _ => Ok(()),
        }
    }

    /// Bytes accounted in the index.
    pub fn total_bytes(&self) -> u64 {
        self.index().total
    }

    /// Entries accounted in the index.
    pub fn entries(&self) -> u64 {
        self.index().lru.len() as u64
    }

    /// Walks the tree once and adds what it finds, oldest as least recently used, behind any
    /// entry written since start-up.
    fn rebuild_index(&self) {
        let mut found = Vec::new();
        let shards = fs::read_dir(&self.root).into_iter().flatten().flatten();
        for shard in shards.filter(|e| e.file_name().len() == 2) {
            for group in fs::read_dir(shard.path()).into_iter().flatten().flatten() {
                for file in fs::read_dir(group.path()).into_iter().flatten().flatten() {
                    if let Ok(meta) = file.metadata() {
                        let when = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                        found.push((when, file.path(), meta.len()));
                    }
                }
            }
        }
        // Newest first; each is then demoted to the tail, so the oldest ends least recent.
        found.sort_by_key(|f| std::cmp::Reverse(f.0));
        let evicted = {
            let mut idx = self.index();
            for (_, path, size) in found {
                if idx.lru.contains(&path) {
                    continue;
                }
                idx.lru.put(path.clone(), size);
                idx.lru.demote(&path);
                idx.total += size;
            }
            self.evict(&mut idx)
        };
        for p in evicted {
            let _ = fs::remove_file(p);
        }
        tracing::debug!(bytes = self.total_bytes(), "cache index rebuilt");
    }
}
