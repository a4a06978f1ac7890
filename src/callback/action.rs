//! The four actions. Each renders its strings over the context, does its work within the
//! callback's timeout, and says what it did or why it failed (secrets scrubbed by the caller).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::context::RunInfo;
use super::template::render;
use crate::spec::{Command, Log, Upload, Webhook};
use crate::store;

/// `[callbacks.upload]`: files of the target folder under the rendered prefix.
pub fn upload(upload: &Upload, context: &Value, run: &RunInfo, timeout: Duration) -> Result<String, String> {
    let to = render(&upload.to, context)?;
    let location = store::open(&to, &upload.options).map_err(|e| e.to_string())?;
    let files = target_files(&run.target_dir, upload.include.as_deref())?;
    if upload.tarball {
        let bytes = tarball(&run.target_dir, &files)?;
        let size = bytes.len();
        location.put("target.tar.gz", bytes, timeout).map_err(|e| e.to_string())?;
        return Ok(format!("uploaded target.tar.gz ({} files, {size} bytes) to {to}", files.len()));
    }
    let mut payload = Vec::with_capacity(files.len());
    for relative in &files {
        let bytes = std::fs::read(run.target_dir.join(relative)).map_err(|e| format!("cannot read {relative}: {e}"))?;
        payload.push((relative.clone(), bytes));
    }
    let count = location.put_all(payload, timeout).map_err(|e| e.to_string())?;
    Ok(format!("uploaded {count} files to {to}"))
}

/// Files under `root` matching `include` (all when none), as sorted `/`-separated paths.
pub fn target_files(root: &Path, include: Option<&[String]>) -> Result<Vec<String>, String> {
    let matcher = match include {
        None => None,
        Some(globs) => {
            let mut builder = globset::GlobSetBuilder::new();
            for glob in globs {
                let glob = globset::GlobBuilder::new(glob)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| format!("bad include glob `{glob}`: {e}"))?;
                builder.add(glob);
            }
            Some(builder.build().map_err(|e| format!("bad include globs: {e}"))?)
        }
    };
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                // The spares of manifest.json and plan.json are scratch, not artifacts.
                if path.strip_prefix(root).is_ok_and(|relative| relative == Path::new(crate::replace::SPARE_DIR)) {
                    continue;
                }
                stack.push(path);
            } else if kind.is_file() {
                let Ok(relative) = path.strip_prefix(root) else { continue };
                let relative = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
                // Temporary files of an atomic write in progress are not artifacts.
                if relative.rsplit('/').next().is_some_and(|name| name.starts_with(".tmp")) {
                    continue;
                }
                if matcher.as_ref().is_none_or(|m| m.is_match(&relative)) {
                    files.push(relative);
                }
            }
        }
    }
    files.sort();
    Ok(files)
}

/// One gzipped tar of `files` (paths relative to `root`).
fn tarball(root: &Path, files: &[String]) -> Result<Vec<u8>, String> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut archive = tar::Builder::new(encoder);
    archive.mode(tar::HeaderMode::Deterministic);
    for relative in files {
        archive.append_path_with_name(root.join(relative), relative).map_err(|e| format!("cannot add {relative} to the tarball: {e}"))?;
    }
    let encoder = archive.into_inner().map_err(|e| format!("cannot finish the tarball: {e}"))?;
    encoder.finish().map_err(|e| format!("cannot finish the tarball: {e}"))
}

/// `[callbacks.command]`: argv (never a shell), the context as JSON on stdin.
pub fn command(command: &Command, name: &str, context: &Value, run: &RunInfo, timeout: Duration) -> Result<String, String> {
    let argv: Vec<String> = command.argv.iter().map(|a| render(a, context)).collect::<Result<_, _>>()?;
    let Some((program, args)) = argv.split_first() else { return Err("argv is empty".into()) };
    let mut process = Process::new(program_path(program, &run.workdir));
    process.args(args).current_dir(&run.workdir).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    let text = |key: &str| context.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    process
        .env("ORRERY_CALLBACK", name)
        .env("ORRERY_STATUS", text("status"))
        .env("ORRERY_NODE", text("parent_block_uuid"))
        .env("ORRERY_PIPELINE", text("pipeline_uuid"))
        .env("ORRERY_RUN_ID", text("run_id"));
    for (key, value) in &command.env {
        process.env(key, render(value, context)?);
    }
    let mut child = process.spawn().map_err(|e| format!("cannot start `{program}`: {e}"))?;
    let body = serde_json::to_vec(context).unwrap_or_default();
    let mut stdin = child.stdin.take();
    let writer = std::thread::spawn(move || {
        if let Some(stdin) = stdin.as_mut() {
            // A program that does not read its stdin is fine.
            let _ = stdin.write_all(&body);
        }
    });
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(stderr) = stderr.as_mut() {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    });
    let deadline = crate::duration::deadline(timeout);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("`{program}` timed out after {} and was killed", humantime::format_duration(timeout)));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("cannot wait for `{program}`: {e}")),
        }
    };
    let _ = writer.join();
    let stderr = reader.join().unwrap_or_default();
    let tail = last_lines(&stderr, 20);
    if status.success() {
        Ok(format!("`{program}` exited 0"))
    } else {
        let code = status.code().map_or_else(|| "by a signal".to_string(), |c| c.to_string());
        let detail = if tail.is_empty() { String::new() } else { format!(": {tail}") };
        Err(format!("`{program}` exited {code}{detail}"))
    }
}

/// A relative program path with a separator runs from the callback's directory.
fn program_path(program: &str, workdir: &Path) -> PathBuf {
    let path = Path::new(program);
    if path.is_relative() && program.contains('/') { workdir.join(path) } else { path.to_path_buf() }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `[callbacks.webhook]`: the context as a JSON body; retried with backoff within the timeout.
pub fn webhook(webhook: &Webhook, context: &Value, timeout: Duration) -> Result<String, String> {
    let url = render(&webhook.url, context)?;
    let mut headers = Vec::with_capacity(webhook.headers.len());
    for (key, value) in &webhook.headers {
        headers.push((key.clone(), render(value, context)?));
    }
    let method = reqwest::Method::from_bytes(format!("{:?}", webhook.method).to_uppercase().as_bytes()).map_err(|e| e.to_string())?;
    store::install_crypto();
    let deadline = crate::duration::deadline(timeout);
    let attempt_all = async {
        let client = reqwest::Client::builder().build().map_err(|e| format!("cannot start an HTTP client: {e}"))?;
        let mut delay = Duration::from_millis(500);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = client.request(method.clone(), &url).json(context);
            for (key, value) in &headers {
                request = request.header(key, value);
            }
            let error = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    return Ok(format!("{} {url} answered {}", method, response.status()));
                }
                Ok(response) => format!("{method} {url} answered {}", response.status()),
                Err(e) => format!("{method} {url} failed: {e}"),
            };
            if attempt > webhook.retries || Instant::now().checked_add(delay).is_none_or(|due| due >= deadline) {
                return Err(if attempt > 1 { format!("{error} (after {attempt} attempts)") } else { error });
            }
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
        }
    };
    store::block_on(timeout, attempt_all).map_err(|e| format!("{method} {url}: {e}"))?
}

/// `[callbacks.log]`: one line to a file (appended) or stderr.
pub fn log(log: &Log, context: &Value, run: &RunInfo) -> Result<String, String> {
    let mut line = match &log.line {
        Some(template) => render(template, context)?,
        None => serde_json::to_string(context).unwrap_or_default(),
    };
    if !line.ends_with('\n') {
        line.push('\n');
    }
    match &log.path {
        None => {
            std::io::stderr().lock().write_all(line.as_bytes()).map_err(|e| e.to_string())?;
            Ok("logged to stderr".into())
        }
        Some(path) => {
            let path = render(path, context)?;
            let full = run.workdir.join(&path);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            let mut file =
                std::fs::OpenOptions::new().create(true).append(true).open(&full).map_err(|e| format!("cannot open {path}: {e}"))?;
            // One write call per line, so lines from parallel callbacks never interleave.
            file.write_all(line.as_bytes()).map_err(|e| format!("cannot write {path}: {e}"))?;
            Ok(format!("logged to {path}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_folder_lists_artifacts_without_spares_or_temporary_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        for file in [
            "compiled/shop/models/a.sql",
            "manifest.json",
            "orrery/change_plan.json",
            "orrery/spare/manifest.json",
            "orrery/spare/plan.json",
            ".tmpAb12",
        ] {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().expect("has a folder")).expect("mkdir");
            std::fs::write(&path, "x").expect("write");
        }
        let all = target_files(dir.path(), None).expect("listed");
        assert_eq!(all, ["compiled/shop/models/a.sql", "manifest.json", "orrery/change_plan.json"]);
        let some = target_files(dir.path(), Some(&["orrery/**".to_string()])).expect("listed");
        assert_eq!(some, ["orrery/change_plan.json"]);
    }
}
