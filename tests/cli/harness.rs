//! `Test::new().args(..).run().status(2)`: runs the orrery binary and checks what a user sees.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies a directory tree (fixtures are copied so tests never write into the checkout).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            if entry.file_name() == "target" || entry.file_name() == ".orrery" {
                continue;
            }
            copy_dir(&entry.path(), &target);
        } else if kind.is_file() {
            // a database left by running the example in the checkout is not part of the fixture
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".duckdb") || name.ends_with(".duckdb.wal") {
                continue;
            }
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// A temp dir holding a copy of a fixture project.
pub fn project_copy(relative: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&repo_root().join(relative), dir.path());
    dir
}

pub struct Test {
    command: Command,
}

impl Test {
    pub fn new() -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_orrery"));
        command.current_dir(repo_root()).env("NO_COLOR", "1").env_remove("RUST_LOG");
        Test { command }
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command.args(args);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.current_dir(dir);
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.command.env(key, value);
        self
    }

    pub fn run(mut self) -> Ran {
        let output = self.command.output().expect("run orrery");
        Ran { output }
    }
}

pub struct Ran {
    pub output: Output,
}

impl Ran {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Asserts the exit code, showing both streams when it differs.
    pub fn status(self, code: i32) -> Self {
        let actual = self.output.status.code();
        assert_eq!(
            actual,
            Some(code),
            "exit code {actual:?}, expected {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.output.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\n--- stderr\n{}", self.stdout(), self.stderr()))
    }

    pub fn stderr_contains(self, needle: &str) -> Self {
        assert!(self.stderr().contains(needle), "stderr lacks {needle:?}:\n{}", self.stderr());
        self
    }
}
