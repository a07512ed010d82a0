//! Writing files so that a crash never leaves a half-written one in place.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, VaeError};

/// Writes `bytes` to `path` atomically: to a temporary file beside it, flushed to disk, then
/// renamed over `path`. A reader (or a crash) sees the old file or the new one, never a
/// mixture.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_dir(path);
    let not_a_file = || std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path");
    let name = path.file_name().ok_or_else(|| VaeError::io(path, not_a_file()))?;
    let tmp: PathBuf = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let write = || -> std::io::Result<()> {
        // A file left at the temporary name (or a link planted there) is removed, not
        // followed: the new file is created afresh.
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut f = no_follow(fs::OpenOptions::new().write(true).create_new(true)).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        VaeError::io(path, e)
    })
}

/// Makes `dir` ready for a program's outputs before any work starts: creates it (and its
/// parents) and checks, by creating and removing a probe file, that files can be written
/// there. A path that is a file, a directory that cannot be written or a full disk is an
/// error naming the path now, not after the work. (The probe is named as a temporary file
/// is, so a run there removes one left by a kill.)
pub fn prepare_out_dir(dir: &Path) -> Result<()> {
    if fs::metadata(dir).is_ok_and(|m| !m.is_dir()) {
        let msg = "not a directory, where the outputs go";
        return Err(VaeError::io(dir, std::io::Error::other(msg)));
    }
    fs::create_dir_all(dir).map_err(|e| VaeError::io(dir, e))?;
    let probe = dir.join(format!(".probe.tmp-{}", std::process::id()));
    let wrote = no_follow(fs::OpenOptions::new().write(true).create_new(true))
        .open(&probe)
        .and_then(|mut f| f.write_all(b"probe").and_then(|_| f.sync_all()));
    let _ = fs::remove_file(&probe);
    wrote.map_err(|e| VaeError::io(dir, e))
}

/// Makes `path` ready to be written as a program's output file before any work starts: its
/// directory as [`prepare_out_dir`] does, and `path` itself not a directory.
pub fn prepare_out_file(path: &Path) -> Result<()> {
    prepare_out_dir(parent_dir(path))?;
    if path.is_dir() {
        let msg = "a directory, where the output file goes";
        return Err(VaeError::io(path, std::io::Error::other(msg)));
    }
    Ok(())
}

/// The directory `path` lies in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// `options` set not to follow a symbolic link at the last component of the path (where the
/// platform can say so): opening one fails instead.
pub fn no_follow(options: &mut fs::OpenOptions) -> &mut fs::OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options
}

/// Refuses, before anything opens it, a path that is not a regular file (a directory, a
/// FIFO, a device): reading one could block or mean nothing.
pub fn require_regular_file(path: &Path) -> Result<()> {
    let meta = fs::metadata(path).map_err(|e| VaeError::io(path, e))?;
    if meta.is_file() {
        Ok(())
    } else {
        let what = if meta.is_dir() { "a directory" } else { "not a regular file" };
        Err(VaeError::io(path, std::io::Error::other(format!("{what}, where a file was expected"))))
    }
}
