//! `Test::new().args(..).run().status(2)`: runs the orrery binary and checks what a user sees.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long one run of the binary may take before the test fails (and the process is killed).
pub(crate) const LIMIT: Duration = Duration::from_secs(180);

/// Kills process `pid` once `limit` has passed, unless dropped first: every process a test
/// starts and waits on by hand has one, so a hang fails its test instead of stalling the suite.
pub(crate) struct Watchdog {
    done: Arc<AtomicBool>,
}

impl Watchdog {
    pub(crate) fn new(pid: u32, limit: Duration) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let watching = done.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + limit;
            while !watching.load(Ordering::SeqCst) {
                if Instant::now() >= deadline {
                    eprintln!("watchdog: process {pid} still running after {} s: killed", limit.as_secs());
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Watchdog { done }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
    }
}

/// Runs `command` to its end with its output captured; a run longer than `limit` is killed
/// and fails the test, naming `what`. The streams are read on their own threads, so a
/// grandchild left holding them cannot stall the test either.
pub(crate) fn output_within(command: &mut Command, limit: Duration, what: &str) -> Output {
    use std::io::Read;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let read = |stream: Option<Box<dyn Read + Send>>| {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut stream) = stream {
                let _ = stream.read_to_end(&mut bytes);
            }
            let _ = sender.send(bytes);
        });
        receiver
    };
    let stdout = read(child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let stderr = read(child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let deadline = Instant::now() + limit;
    let (status, killed) = loop {
        match child.try_wait().unwrap_or_else(|e| panic!("cannot wait for {what}: {e}")) {
            Some(status) => break (status, false),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                break (child.wait().unwrap_or_else(|e| panic!("cannot wait for {what}: {e}")), true);
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let grace = if killed { Duration::from_secs(2) } else { Duration::from_secs(60) };
    let output =
        Output { status, stdout: stdout.recv_timeout(grace).unwrap_or_default(), stderr: stderr.recv_timeout(grace).unwrap_or_default() };
    assert!(
        !killed,
        "{what} did not finish within {} s and was killed\n--- stdout\n{}\n--- stderr\n{}",
        limit.as_secs(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies a directory tree (fixtures are copied so tests never write into the checkout).
pub(crate) fn copy_dir(from: &Path, to: &Path) {
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
pub(crate) fn project_copy(relative: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&repo_root().join(relative), dir.path());
    dir
}

pub(crate) struct Test {
    command: Command,
    limit: Duration,
}

impl Test {
    pub(crate) fn new() -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_orrery"));
        command.current_dir(repo_root()).env("NO_COLOR", "1").env_remove("RUST_LOG");
        Test { command, limit: LIMIT }
    }

    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command.args(args);
        self
    }

    pub(crate) fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.current_dir(dir);
        self
    }

    pub(crate) fn env(mut self, key: &str, value: &str) -> Self {
        self.command.env(key, value);
        self
    }

    /// How long this run may take (default [`LIMIT`]).
    pub(crate) fn limit(mut self, limit: Duration) -> Self {
        self.limit = limit;
        self
    }

    pub(crate) fn run(mut self) -> Ran {
        let what = format!("orrery {:?}", self.command.get_args().collect::<Vec<_>>());
        let output = output_within(&mut self.command, self.limit, &what);
        Ran { output }
    }
}

pub(crate) struct Ran {
    pub output: Output,
}

impl Ran {
    pub(crate) fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Asserts the exit code, showing both streams when it differs.
    pub(crate) fn status(self, code: i32) -> Self {
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

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.output.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\n--- stderr\n{}", self.stdout(), self.stderr()))
    }

    pub(crate) fn stderr_contains(self, needle: &str) -> Self {
        assert!(self.stderr().contains(needle), "stderr lacks {needle:?}:\n{}", self.stderr());
        self
    }
}
