//! The run's contact with its machine: files written so that a crash never leaves a
//! half-written one in place, destinations checked before any work, and the memory this
//! process may use.

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
    // The nearest existing one of `dir` and its parents must be a directory.
    if let Some(file) = dir.ancestors().find(|a| fs::metadata(a).is_ok()).filter(|a| !a.is_dir()) {
        let msg = if file == dir {
            "not a directory, where the outputs go".to_string()
        } else {
            format!("not a directory, where the outputs' directory {} goes", dir.display())
        };
        return Err(VaeError::io(file, std::io::Error::other(msg)));
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

/// The most memory this process can count on, and what sets it: the least of the machine's
/// physical memory, its control group's limit and its address-space limit (`ulimit -v`,
/// less [`address_space_allowance`] for the program's own mappings). Each is read where
/// the platform shows it; with none readable the limit is `u64::MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryLimit {
    /// The limit in bytes.
    pub bytes: u64,
    /// What sets it, for messages ("physical memory", ...).
    pub source: &'static str,
}

/// Address space a process with `threads` worker threads reserves besides its data: the
/// binary and libraries, and per thread its stack and the allocator's arena (64 MiB each
/// with glibc; `mnist_vae`'s peak virtual size grows by about 66 MB a thread).
pub fn address_space_allowance(threads: usize) -> u64 {
    (128u64 << 20).saturating_add((72u64 << 20).saturating_mul(threads as u64 + 1))
}

impl MemoryLimit {
    /// This process's limit, read now (the address-space allowance for the threads of the
    /// current rayon pool).
    pub fn current() -> Self {
        let read = |p: &str| fs::read_to_string(p).ok();
        let mut limits = Vec::new();
        if let Some(kib) = read("/proc/meminfo").as_deref().and_then(|m| proc_field(m, "MemTotal:")) {
            limits.push(MemoryLimit { bytes: kib.saturating_mul(1024), source: "physical memory" });
        }
        if let Some(b) = read("/proc/self/limits").as_deref().and_then(address_space_limit) {
            let bytes = b.saturating_sub(address_space_allowance(rayon::current_num_threads()));
            limits.push(MemoryLimit { bytes, source: "the address-space limit (ulimit -v)" });
        }
        let groups = read("/proc/self/cgroup").unwrap_or_default();
        for file in cgroup_limit_files(&groups) {
            if let Some(bytes) = read(&file).as_deref().and_then(cgroup_limit) {
                limits.push(MemoryLimit { bytes, source: "the control group's memory limit" });
            }
        }
        limits.into_iter().min_by_key(|l| l.bytes).unwrap_or(MemoryLimit { bytes: u64::MAX, source: "none" })
    }

    /// Refuses work whose estimate `need` (bytes) exceeds the limit, in one line naming the
    /// setting that asks for the most: of `suspects`, each a flag, its value and the need
    /// with that setting brought down to its least, the one that leaves the least.
    pub fn require(&self, need: u128, suspects: &[(&str, String, u128)]) -> Result<()> {
        if need <= self.bytes as u128 {
            return Ok(());
        }
        let what = match suspects.iter().min_by_key(|(_, _, rest)| *rest) {
            Some((flag, value, _)) => format!("{flag} {value}"),
            None => "these settings".to_string(),
        };
        Err(VaeError::Config(format!(
            "{what} would need about {} of memory, and {} allows {}; choose smaller sizes",
            human_bytes(need),
            self.source,
            human_bytes(self.bytes as u128)
        )))
    }
}

/// A `/proc/meminfo`-style field's number (`MemTotal:   24576000 kB` gives 24576000).
fn proc_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
}

/// The soft "Max address space" of `/proc/self/limits`, in bytes (`None` when unlimited).
fn address_space_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max address space"))?;
    line.trim_start_matches("Max address space").split_whitespace().next()?.parse().ok()
}

/// The files holding a memory limit for the control groups of `/proc/self/cgroup`'s text:
/// for cgroup v2 (`0::/path`) `memory.max` of the group and of each ancestor; for v1
/// (`N:memory:/path`) `memory.limit_in_bytes` of the group and of the hierarchy's root
/// (inside a container the group's own directory is often the mount's root).
fn cgroup_limit_files(groups: &str) -> Vec<String> {
    let mut files = Vec::new();
    for line in groups.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (root, file) = match controllers {
            "" => ("/sys/fs/cgroup", "memory.max"),
            c if c.split(',').any(|c| c == "memory") => ("/sys/fs/cgroup/memory", "memory.limit_in_bytes"),
            _ => continue,
        };
        let mut dir = Path::new(path);
        loop {
            let rel = dir.strip_prefix("/").unwrap_or(dir);
            files.push(Path::new(root).join(rel).join(file).to_string_lossy().into_owned());
            match dir.parent() {
                Some(p) => dir = p,
                None => break,
            }
        }
    }
    files
}

/// A control group's limit file's value in bytes (`None` for `max`, no limit).
fn cgroup_limit(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// A byte count for people: `999 bytes`, `1.5 MB`, `52.7 TB` (powers of 1000).
pub fn human_bytes(n: u128) -> String {
    let units = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// A fresh, empty directory for a unit test: `vae-{name}-{pid}` in the system's temporary
/// directory, emptied first if a failed run left it behind.
#[cfg(test)]
pub(crate) fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vae-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_limits_are_read_from_the_kernels_files() {
        assert_eq!(proc_field("MemTotal:       24576000 kB\nMemFree: 1 kB\n", "MemTotal:"), Some(24576000));
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max address space         unlimited            unlimited            bytes     \n";
        assert_eq!(address_space_limit(limits), None);
        let limited = limits.replace("unlimited            unlimited", "2147483648           4294967296");
        assert_eq!(address_space_limit(&limited), Some(2147483648));
        assert_eq!(cgroup_limit("max\n"), None);
        assert_eq!(cgroup_limit("1073741824\n"), Some(1 << 30));
        let v2 = cgroup_limit_files("0::/user.slice/run.scope\n");
        assert_eq!(
            v2,
            [
                "/sys/fs/cgroup/user.slice/run.scope/memory.max",
                "/sys/fs/cgroup/user.slice/memory.max",
                "/sys/fs/cgroup/memory.max"
            ]
        );
        let v1 = cgroup_limit_files("5:devices:/\n4:memory:/box/1\n1:cpu,cpuacct:/\n");
        assert_eq!(
            v1,
            [
                "/sys/fs/cgroup/memory/box/1/memory.limit_in_bytes",
                "/sys/fs/cgroup/memory/box/memory.limit_in_bytes",
                "/sys/fs/cgroup/memory/memory.limit_in_bytes"
            ]
        );
        let limit = MemoryLimit { bytes: 1000, source: "a test" };
        let suspects = [("--x", "2".to_string(), 1000), ("--y", "3".to_string(), 10)];
        assert!(limit.require(1000, &suspects).is_ok());
        assert_eq!(
            limit.require(1001, &suspects).unwrap_err().to_string(),
            "invalid configuration: --y 3 would need about 1.0 KB of memory, and a test allows 1.0 KB; choose smaller sizes"
        );
        assert_eq!(human_bytes(999), "999 bytes");
        assert_eq!(human_bytes(1_500_000), "1.5 MB");
    }
}
