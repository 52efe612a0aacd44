//! Free space on the data dir's disk, watched so that sled never meets a full disk.
//!
//! Why not let sled hit ENOSPC and recover: sled 0.34 cannot. Its first failed write is kept
//! as a global error and returned by every later write and flush of that database, even once
//! space is freed; only reopening clears it, and reopening on a full disk fails too (measured
//! on a tmpfs, README "Durability"). Reads keep working, but they may show writes that never
//! reached the disk. So the node refuses writes while there is still room for the ones it has
//! already accepted:
//!
//! * While it accepts writes it holds a **headroom file** (`headroom` in the data dir,
//!   `storage.reserve_mb`, allocated with `posix_fallocate`).
//! * The storage writer looks at free space (`statvfs`) before every group commit and every
//!   [`PROBE_EVERY`] while idle. Below the reserve the store is **full**: new writes are
//!   refused at once, before anything is queued (`StorageError::Full`), and the headroom file
//!   is deleted, so that what was accepted before (and the bookkeeping that follows it: outbox
//!   removals, the read model) is flushed into the space it held, however suddenly something
//!   else filled the disk.
//! * Once free space is back to twice the reserve, the headroom file is allocated again and
//!   writes are accepted: no restart.
//!
//! A reserve of 0 turns all of this off, and gives back a headroom file an earlier setting
//! left. Tools and unit tests open stores without any watch ([`Space::unwatched`]), leaving a
//! node's headroom file alone.

use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// How often the writer looks at the disk while it has nothing to write.
pub const PROBE_EVERY: Duration = Duration::from_millis(250);

/// The headroom file's name in the data dir (sled leaves other names alone).
pub const HEADROOM_FILE: &str = "headroom";

/// The free-space watch of one data dir.
pub struct Space {
    dir: PathBuf,
    headroom: PathBuf,
    /// Bytes kept in reserve (0: not watched).
    reserve: u64,
    /// Writes are refused while set.
    full: AtomicBool,
    /// Free space at the last look (bytes available to an unprivileged writer).
    available: AtomicU64,
    /// Whether the headroom file is allocated. Only the probe changes it (one at a time).
    holding: Mutex<bool>,
}

impl Space {
    /// No watch, and the data dir's headroom file, if any, left alone (tools, unit tests).
    pub fn unwatched(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            headroom: dir.join(HEADROOM_FILE),
            reserve: 0,
            full: AtomicBool::new(false),
            available: AtomicU64::new(0),
            holding: Mutex::new(false),
        }
    }

    /// Starts watching `dir` (created if missing). Runs before sled opens: on a disk that is
    /// already full, the headroom is given back first, so that sled has room to start.
    pub fn open(dir: &Path, reserve: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let headroom = dir.join(HEADROOM_FILE);
        // A headroom file of another size (the setting changed) is made again at the new size.
        let holding = match std::fs::metadata(&headroom) {
            Ok(m) if reserve > 0 && m.len() == reserve => true,
            Ok(_) => {
                std::fs::remove_file(&headroom)?;
                false
            }
            Err(_) => false,
        };
        let space = Self {
            dir: dir.to_path_buf(),
            headroom,
            reserve,
            full: AtomicBool::new(false),
            available: AtomicU64::new(0),
            holding: Mutex::new(holding),
        };
        space.probe();
        Ok(space)
    }

    /// Whether writes are refused now.
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Acquire)
    }

    /// Free space at the last look, and the reserve (for readiness and metrics).
    pub fn last_seen(&self) -> (u64, u64) {
        (self.available.load(Ordering::Relaxed), self.reserve)
    }

    /// Looks at the disk and moves between accepting and refusing writes; whether it is full.
    pub fn probe(&self) -> bool {
        if self.reserve == 0 {
            return false;
        }
        let mut holding = self.holding.lock();
        let available = match fs2::available_space(&self.dir) {
            Ok(bytes) => bytes,
            Err(e) => {
                // Cannot tell: keep the last decision rather than flap.
                tracing::warn!(error = %e, dir = %self.dir.display(), "free space of the data dir unknown");
                return self.is_full();
            }
        };
        self.available.store(available, Ordering::Relaxed);
        if *holding {
            if available < self.reserve {
                self.set_full(true, available);
                // Give the headroom to what was accepted before this moment.
                match std::fs::remove_file(&self.headroom) {
                    Ok(()) => *holding = false,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => *holding = false,
                    Err(e) => tracing::error!(error = %e, "the headroom file could not be deleted"),
                }
                self.available.store(fs2::available_space(&self.dir).unwrap_or(available), Ordering::Relaxed);
            }
        } else if available >= self.reserve.saturating_mul(2) {
            match self.allocate() {
                Ok(()) => {
                    *holding = true;
                    self.available.store(available.saturating_sub(self.reserve), Ordering::Relaxed);
                    self.set_full(false, available);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the headroom file could not be allocated; still refusing writes");
                    let _ = std::fs::remove_file(&self.headroom);
                    self.set_full(true, available);
                }
            }
        } else {
            self.set_full(true, available);
        }
        self.is_full()
    }

    fn allocate(&self) -> std::io::Result<()> {
        let file = std::fs::OpenOptions::new().create(true).truncate(true).write(true).open(&self.headroom)?;
        fs2::FileExt::allocate(&file, self.reserve)?;
        file.sync_all()
    }

    fn set_full(&self, full: bool, available: u64) {
        let was = self.full.swap(full, Ordering::AcqRel);
        match (was, full) {
            (false, true) => tracing::error!(
                available_bytes = available,
                reserve_bytes = self.reserve,
                dir = %self.dir.display(),
                "storage full: refusing writes until space is freed"
            ),
            (true, false) => {
                tracing::warn!(available_bytes = available, "storage has room again: accepting writes")
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "space_test.rs"]
mod tests;
