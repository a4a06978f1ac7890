//! User-facing errors: every diagnostic is data (severity, code, message, help, and a span
//! into a named source when one exists), rendered once by miette or as JSON.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{LabeledSpan, NamedSource, SourceCode};
use serde::Serialize;

/// A loaded text file that diagnostics can point into. Cheap to clone.
#[derive(Clone)]
pub struct SourceFile {
    /// The path shown to users (relative to the current directory when possible).
    pub path: Arc<PathBuf>,
    pub text: Arc<str>,
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Self {
        SourceFile { path: Arc::new(path.into()), text: text.into() }
    }

    /// Reads a file; the error is a diagnostic naming the path.
    pub fn read(path: &Path) -> Result<Self, Diagnostic> {
        Self::read_opened(path, std::fs::File::open(path))
    }

    /// Like [`SourceFile::read`], from the file at `path` opened already (or the error of
    /// opening it): e.g. by name in its directory (`crate::dirs`).
    pub fn read_opened(path: &Path, file: std::io::Result<std::fs::File>) -> Result<Self, Diagnostic> {
        match file.and_then(read_text) {
            Ok(text) => Ok(SourceFile::new(display_path(path), text)),
            Err(err) => {
                Err(Diagnostic::error(crate::codes::io::READ, format!("cannot read {}: {err}", path.display()))
                    .with_file(display_path(path)))
            }
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let before = &self.text[..offset];
        let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = self.text[line_start..offset].chars().count() + 1;
        (line, column)
    }

    /// Byte offset of a 1-based line and column (in characters); clamps to the text.
    pub fn offset_of(&self, line: usize, column: usize) -> usize {
        let mut start = 0;
        for _ in 1..line.max(1) {
            match self.text[start..].find('\n') {
                Some(i) => start += i + 1,
                None => return self.text.len(),
            }
        }
        let rest = &self.text[start..];
        let line_len = rest.find('\n').unwrap_or(rest.len());
        let col_bytes = rest[..line_len].char_indices().nth(column.saturating_sub(1)).map_or(line_len, |(i, _)| i);
        start + col_bytes
    }
}

impl fmt::Debug for SourceFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceFile({})", self.path.display())
    }
}

/// A UTF-8 file's text, read through a buffer kept per thread and copied once into its shared
/// string. `fs::read_to_string` (and `read_to_end`) ask the file's size and position first, two
/// system calls more per file, and its `String` is copied again into the `Arc<str>`: a project
/// reads thousands of files.
fn read_text(mut file: std::fs::File) -> std::io::Result<Arc<str>> {
    thread_local! {
        // Always full length: only its first `filled` bytes are read each time.
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with_borrow_mut(|buf| {
        if buf.len() < 1 << 16 {
            buf.resize(1 << 16, 0);
        }
        let mut filled = read_up_to(&mut file, buf)?;
        // A full buffer may not be the whole file: twice the room, and on.
        while filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
            filled += read_up_to(&mut file, &mut buf[filled..])?;
        }
        let text = std::str::from_utf8(&buf[..filled]).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let shared = Arc::from(text);
        // A rare large file does not keep its buffer's memory for the rest of the run.
        if buf.len() > 1 << 20 {
            *buf = Vec::new();
        }
        Ok(shared)
    })
}

/// Reads from `reader` until `buf` is full or the input ends; the number of bytes read (fewer
/// than `buf.len()` only at the end of the input). Unlike `read_exact`, the end is no error.
pub(crate) fn read_up_to(reader: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A path relative to the current directory when it lies below it, else as given.
pub fn display_path(path: &Path) -> PathBuf {
    // orrery never changes directory: the current one is asked once (a project reads
    // thousands of files).
    static CWD: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    if let Some(cwd) = CWD.get_or_init(|| std::env::current_dir().ok())
        && let Ok(rel) = path.strip_prefix(cwd)
    {
        return rel.to_path_buf();
    }
    path.to_path_buf()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// What a [`Diagnostic`] holds.
#[derive(Clone)]
pub struct DiagnosticData {
    pub severity: Severity,
    /// A namespaced code such as `spec::unknown_key` or `graph::cycle`.
    pub code: String,
    pub message: String,
    pub help: Option<String>,
    /// The file the problem is in; `source` carries its text when a span is known.
    pub file: Option<PathBuf>,
    pub source: Option<SourceFile>,
    pub span: Option<Range<usize>>,
    pub label: Option<String>,
    /// Further places that belong to the same problem (e.g. the other end of a cycle).
    pub related: Vec<Diagnostic>,
}

/// One problem found in the user's input: its data boxed, so a `Result` carrying one stays a
/// pointer wide on the paths that succeed.
#[derive(Clone)]
pub struct Diagnostic(Box<DiagnosticData>);

impl std::ops::Deref for Diagnostic {
    type Target = DiagnosticData;

    fn deref(&self) -> &DiagnosticData {
        &self.0
    }
}

impl std::ops::DerefMut for Diagnostic {
    fn deref_mut(&mut self) -> &mut DiagnosticData {
        &mut self.0
    }
}

impl Diagnostic {
    pub fn new(severity: Severity, code: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic(Box::new(DiagnosticData {
            severity,
            code: code.into(),
            message: message.into(),
            help: None,
            file: None,
            source: None,
            span: None,
            label: None,
            related: Vec::new(),
        }))
    }

    pub fn error(code: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic::new(Severity::Error, code, message)
    }

    pub fn warning(code: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic::new(Severity::Warning, code, message)
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn with_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.file = Some(file.into());
        self
    }

    /// Points the diagnostic at a byte range of a source file.
    pub fn at(mut self, source: &SourceFile, span: Range<usize>) -> Self {
        let len = source.text.len();
        let start = span.start.min(len);
        let end = span.end.clamp(start, len);
        self.file = Some(source.path.as_ref().clone());
        self.source = Some(source.clone());
        self.span = Some(start..end);
        self
    }

    /// Points the diagnostic at a 1-based line and column of a source file.
    pub fn at_line_col(self, source: &SourceFile, line: usize, column: usize) -> Self {
        let start = source.offset_of(line, column);
        let end = source.text[start..].chars().next().map_or(start, |c| start + c.len_utf8());
        self.at(source, start..end)
    }

    pub fn with_related(mut self, related: Diagnostic) -> Self {
        self.related.push(related);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// File, 1-based line and 1-based column, when known.
    pub fn location(&self) -> Option<(PathBuf, Option<(usize, usize)>)> {
        let file = self.file.clone()?;
        let line_col = match (&self.source, &self.span) {
            (Some(source), Some(span)) => Some(source.line_col(span.start)),
            _ => None,
        };
        Some((file, line_col))
    }

    /// The JSON form of `validate --format json`.
    pub fn to_json(&self) -> serde_json::Value {
        let location = self.location();
        let (file, line, column) = match &location {
            Some((file, Some((line, column)))) => (Some(file.display().to_string()), Some(*line), Some(*column)),
            Some((file, None)) => (Some(file.display().to_string()), None, None),
            None => (None, None, None),
        };
        serde_json::json!({
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "file": file,
            "line": line,
            "column": column,
            "help": self.help,
        })
    }

    fn sort_key(&self) -> (Option<PathBuf>, usize, Severity, String) {
        (self.file.clone(), self.span.as_ref().map_or(0, |s| s.start), self.severity, self.message.clone())
    }
}

impl Diagnostic {
    /// Where it points, as `file:line:col` (or just the file), when it points anywhere.
    pub fn place(&self) -> Option<String> {
        match self.location()? {
            (file, Some((line, col))) => Some(format!("{}:{line}:{col}", file.display())),
            (file, None) => Some(file.display().to_string()),
        }
    }
}

impl fmt::Debug for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(place) = self.place() {
            write!(f, "{place}: ")?;
        }
        write!(f, "{:?}[{}] {}", self.severity, self.code, self.message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(&self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.span.clone()?;
        let label = LabeledSpan::new_with_span(self.label.clone().or_else(|| Some("here".into())), span);
        Some(Box::new(std::iter::once(label)))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            return None;
        }
        Some(Box::new(self.related.iter().map(|d| d as &dyn miette::Diagnostic)))
    }
}

impl SourceCode for SourceFile {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let inner = self.text.read_span(span, context_lines_before, context_lines_after)?;
        let name = self.path.display().to_string();
        Ok(Box::new(miette::MietteSpanContents::new_named(
            name,
            inner.data(),
            *inner.span(),
            inner.line(),
            inner.column(),
            inner.line_count(),
        )))
    }
}

/// Every problem a stage found, errors and warnings, in a stable order.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn new() -> Self {
        Diagnostics(Vec::new())
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| !d.is_error())
    }

    /// Sorts by file, position, severity and message, and drops exact repeats.
    pub fn sort(&mut self) {
        self.0.sort_by_key(Diagnostic::sort_key);
        self.0.dedup_by(|a, b| a.sort_key() == b.sort_key() && a.code == b.code);
    }

    /// `Err(self)` when any error is present, else `Ok(warnings)`.
    pub fn into_result(mut self) -> Result<Diagnostics, Diagnostics> {
        self.sort();
        if self.has_errors() { Err(self) } else { Ok(self) }
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.errors().count();
        let warnings = self.0.len() - errors;
        write!(f, "{errors} error(s), {warnings} warning(s)")
    }
}

impl std::error::Error for Diagnostics {}

/// The closest candidate to `name` by edit distance, when it is close enough to suggest.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A named source for miette from a plain string (for errors outside a project file).
pub fn named_source(name: &str, text: &str) -> NamedSource<String> {
    NamedSource::new(name, text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_whole_at_any_size_and_must_be_utf8() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Either side of the 64 KiB the buffer starts with, and past several doublings of it.
        for len in [0, 1, (1 << 16) - 1, 1 << 16, (1 << 16) + 1, 300_000] {
            let text: String = "sélect 1;\n".chars().cycle().take(len).collect();
            let path = dir.path().join(format!("f{len}.sql"));
            std::fs::write(&path, &text).expect("write");
            assert_eq!(&*SourceFile::read(&path).expect("read").text, text.as_str(), "{len} characters");
        }
        let path = dir.path().join("latin1.sql");
        std::fs::write(&path, b"select '\xe9'").expect("write");
        let err = SourceFile::read(&path).expect_err("not UTF-8");
        assert!(err.message.contains("cannot read"), "{}", err.message);
    }

    #[test]
    fn line_col_round_trips() {
        let src = SourceFile::new("a.txt", "ab\ncdé\nf");
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(3), (2, 1));
        assert_eq!(src.line_col(8), (3, 1));
        assert_eq!(src.offset_of(2, 3), 5);
        assert_eq!(src.offset_of(3, 1), 8);
    }

    #[test]
    fn suggests_close_names() {
        assert_eq!(did_you_mean("thread", ["threads", "mode", "retries"]), Some("threads"));
        assert_eq!(did_you_mean("zzz", ["threads", "mode"]), None);
    }
}
