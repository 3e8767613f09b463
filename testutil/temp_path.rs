//! A scratch path under the system temp dir for tests that write files: not created (the code
//! under test may insist on making it), removed with everything under it when dropped, so a
//! test run leaves nothing behind. Included by the test crates with `#[path]`.

use std::ffi::OsStr;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

pub struct TempPath(PathBuf);

impl TempPath {
    /// A fresh path named after `prefix`, `tag`, the process and a counter.
    pub fn new(prefix: &str, tag: &str) -> TempPath {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TempPath(path)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Deref for TempPath {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl AsRef<Path> for TempPath {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<OsStr> for TempPath {
    fn as_ref(&self) -> &OsStr {
        self.0.as_os_str()
    }
}
