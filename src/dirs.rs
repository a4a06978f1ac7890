//! Directories opened once, so that the many files in each are opened by name.
//!
//! Opening a file by its whole path makes the kernel look up every component of it; opened in
//! its directory (`openat`), only the last. A compile reads and writes thousands of files in a
//! dozen directories: at 10k models, path lookup was about a quarter of the time spent checking
//! and writing the compiled files. Where a directory cannot be opened so (or off Linux), callers
//! open their files by path as before.

use std::ffi::OsStr;
use std::fs::File;
use std::path::Path;

/// Handles of directories by path; a file is opened through its directory's handle when there
/// is one, else by its path.
pub struct DirHandles<'a> {
    #[cfg(target_os = "linux")]
    fds: crate::FastMap<&'a Path, std::os::fd::OwnedFd>,
    #[cfg(not(target_os = "linux"))]
    _dirs: std::marker::PhantomData<&'a Path>,
}

impl<'a> DirHandles<'a> {
    /// Opens each directory (those that cannot be opened are left out).
    #[cfg(target_os = "linux")]
    pub fn open(dirs: impl IntoIterator<Item = &'a Path>) -> Self {
        use rustix::fs::{CWD, Mode, OFlags, openat};
        let fds = dirs
            .into_iter()
            .filter_map(|dir| Some((dir, openat(CWD, dir, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).ok()?)))
            .collect();
        DirHandles { fds }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn open(_dirs: impl IntoIterator<Item = &'a Path>) -> Self {
        DirHandles { _dirs: std::marker::PhantomData }
    }

    /// Whether `dir` was opened.
    #[cfg(test)]
    fn has(&self, dir: &Path) -> bool {
        #[cfg(target_os = "linux")]
        {
            self.fds.contains_key(dir)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = dir;
            false
        }
    }

    /// Opens the file at `path` with `flags` through its directory's handle, when it has one.
    #[cfg(target_os = "linux")]
    fn open_at(&self, path: &Path, flags: rustix::fs::OFlags) -> Option<std::io::Result<File>> {
        use rustix::fs::{Mode, OFlags, openat};
        let dir = self.fds.get(path.parent()?)?;
        let name: &OsStr = path.file_name()?;
        Some(openat(dir, name, flags | OFlags::CLOEXEC, Mode::from_raw_mode(0o666)).map(File::from).map_err(Into::into))
    }

    /// The file at `path`, for reading.
    pub fn open_read(&self, path: &Path) -> std::io::Result<File> {
        #[cfg(target_os = "linux")]
        if let Some(opened) = self.open_at(path, rustix::fs::OFlags::RDONLY) {
            return opened;
        }
        File::open(path)
    }

    /// Creates (or truncates) the file at `path` and writes `text`, with the permissions
    /// `fs::write` gives a new file.
    pub fn create(&self, path: &Path, text: &str) -> std::io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(opened) = self.open_at(path, rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CREATE | rustix::fs::OFlags::TRUNC) {
            return std::io::Write::write_all(&mut opened?, text.as_bytes());
        }
        std::fs::write(path, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_read_and_written_by_name_in_their_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("models");
        std::fs::create_dir(&sub).expect("mkdir");
        std::fs::write(sub.join("a.sql"), "select 1").expect("write");
        let missing = dir.path().join("missing");
        let handles = DirHandles::open([sub.as_path(), missing.as_path()]);
        assert!(!handles.has(&missing), "a directory that does not exist has no handle");
        assert_eq!(handles.has(&sub), cfg!(target_os = "linux"), "Linux opens the directory");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut handles.open_read(&sub.join("a.sql")).expect("open"), &mut text).expect("read");
        assert_eq!(text, "select 1");
        handles.create(&sub.join("b.sql"), "select 2").expect("create");
        handles.create(&sub.join("a.sql"), "select 3").expect("truncate");
        assert_eq!(std::fs::read_to_string(sub.join("b.sql")).expect("b"), "select 2");
        assert_eq!(std::fs::read_to_string(sub.join("a.sql")).expect("a"), "select 3");
        assert!(handles.open_read(&sub.join("c.sql")).is_err());
        // A file in a directory without a handle is opened by its path.
        let other = dir.path().join("other.sql");
        handles.create(&other, "select 4").expect("by path");
        assert_eq!(std::fs::read_to_string(&other).expect("other"), "select 4");
    }
}
