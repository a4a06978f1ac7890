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

/// Handles of directories by path.
pub struct DirHandles<'a> {
    #[cfg(target_os = "linux")]
    fds: crate::FastMap<&'a Path, std::os::fd::OwnedFd>,
    #[cfg(not(target_os = "linux"))]
    _dirs: std::marker::PhantomData<&'a Path>,
}

/// One open directory.
#[cfg(target_os = "linux")]
pub struct DirHandle<'a>(&'a std::os::fd::OwnedFd);

#[cfg(not(target_os = "linux"))]
pub enum DirHandle {}

#[cfg(target_os = "linux")]
impl<'a> DirHandles<'a> {
    /// Opens each directory (those that cannot be opened are left out).
    pub fn open(dirs: impl IntoIterator<Item = &'a Path>) -> Self {
        use rustix::fs::{CWD, Mode, OFlags, openat};
        let fds = dirs
            .into_iter()
            .filter_map(|dir| Some((dir, openat(CWD, dir, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).ok()?)))
            .collect();
        DirHandles { fds }
    }

    pub fn get(&self, dir: &Path) -> Option<DirHandle<'_>> {
        self.fds.get(dir).map(DirHandle)
    }
}

#[cfg(target_os = "linux")]
impl DirHandle<'_> {
    fn open(&self, name: &OsStr, flags: rustix::fs::OFlags) -> std::io::Result<File> {
        let fd = rustix::fs::openat(self.0, name, flags | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::from_raw_mode(0o666))?;
        Ok(File::from(fd))
    }

    /// The file of this name in the directory, for reading.
    pub fn open_read(&self, name: &OsStr) -> std::io::Result<File> {
        self.open(name, rustix::fs::OFlags::RDONLY)
    }

    /// Creates (or truncates) the file of this name in the directory and writes `text`, with
    /// the permissions `fs::write` gives a new file.
    pub fn create(&self, name: &OsStr, text: &str) -> std::io::Result<()> {
        use rustix::fs::OFlags;
        let mut file = self.open(name, OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC)?;
        std::io::Write::write_all(&mut file, text.as_bytes())
    }
}

#[cfg(not(target_os = "linux"))]
impl<'a> DirHandles<'a> {
    pub fn open(_dirs: impl IntoIterator<Item = &'a Path>) -> Self {
        DirHandles { _dirs: std::marker::PhantomData }
    }

    pub fn get(&self, _dir: &Path) -> Option<DirHandle> {
        None
    }
}

#[cfg(not(target_os = "linux"))]
impl DirHandle {
    pub fn open_read(&self, _name: &OsStr) -> std::io::Result<File> {
        match *self {}
    }

    pub fn create(&self, _name: &OsStr, _text: &str) -> std::io::Result<()> {
        match *self {}
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
        assert!(handles.get(&missing).is_none(), "a directory that does not exist has no handle");
        let Some(handle) = handles.get(&sub) else {
            assert!(!cfg!(target_os = "linux"), "Linux opens the directory");
            return;
        };
        let mut text = String::new();
        std::io::Read::read_to_string(&mut handle.open_read(OsStr::new("a.sql")).expect("open"), &mut text).expect("read");
        assert_eq!(text, "select 1");
        handle.create(OsStr::new("b.sql"), "select 2").expect("create");
        handle.create(OsStr::new("a.sql"), "select 3").expect("truncate");
        assert_eq!(std::fs::read_to_string(sub.join("b.sql")).expect("b"), "select 2");
        assert_eq!(std::fs::read_to_string(sub.join("a.sql")).expect("a"), "select 3");
        assert!(handle.open_read(OsStr::new("c.sql")).is_err());
    }
}
