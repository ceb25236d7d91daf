//! Compiled functions kept on disk, shared by every component compiled
//! here: Cranelift's incremental compilation cache.
//!
//! A Python or JavaScript plugin is mostly its interpreter, the same
//! functions in every plugin built by the same toolchain; with this cache
//! a second such plugin compiles only what is its own (measured with
//! `just bench plugins`: a second Python plugin 4.96 s -> 1.44 s, a
//! second JavaScript one 6.02 s -> 1.87 s). Entries are native code, so
//! the directory and each entry must be this user's alone
//! ([`crate::native_code::trusted`]); the directory stops growing at its byte
//! limit (later functions are compiled, not kept).

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes the function cache may hold: about 30 MB per Python toolchain and
/// 45 MB per JavaScript one.
pub const MAX_BYTES: u64 = 1 << 30;

/// Tells apart the temporary files of writers running at once.
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// The cache in one directory.
#[derive(Debug)]
pub struct FunctionCache {
    dir: PathBuf,
    used: AtomicU64,
    max_bytes: u64,
}

impl FunctionCache {
    /// Opens (creating) the cache in `dir`; refused unless the directory is
    /// this user's alone.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Arc<FunctionCache>> {
        std::fs::create_dir_all(dir)?;
        crate::native_code::trusted(dir)?;
        let used = std::fs::read_dir(dir)?
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        Ok(Arc::new(FunctionCache {
            dir: dir.to_owned(),
            used: AtomicU64::new(used),
            max_bytes,
        }))
    }

    /// The directory, for a compiler process to open the same cache.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry(&self, key: &[u8]) -> PathBuf {
        self.dir.join(crate::sha256_hex(key))
    }
}

impl wasmtime::CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let path = self.entry(key);
        crate::native_code::trusted(&path).ok()?;
        std::fs::read(path).ok().map(Cow::Owned)
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let len = value.len() as u64;
        if self.used.load(Ordering::Relaxed) + len > self.max_bytes {
            return false;
        }
        let path = self.entry(key);
        let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp{}-{seq}", std::process::id()));
        let written = std::fs::write(&tmp, &value).and_then(|()| std::fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
            return false;
        }
        self.used.fetch_add(len, Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::CacheStore;

    #[test]
    fn keeps_entries_up_to_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FunctionCache::open(&dir.path().join("f"), 10).unwrap();
        assert!(cache.get(b"a").is_none());
        assert!(cache.insert(b"a", vec![1; 6]));
        assert_eq!(cache.get(b"a").as_deref(), Some(&[1u8; 6][..]));
        // Over the limit: not kept.
        assert!(!cache.insert(b"b", vec![2; 6]));
        assert!(cache.get(b"b").is_none());
        // Reopened, it counts what is there.
        let again = FunctionCache::open(&dir.path().join("f"), 10).unwrap();
        assert!(!again.insert(b"c", vec![3; 5]));
        assert!(again.insert(b"c", vec![3; 4]));
    }
}
