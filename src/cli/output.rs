//! Printing diagnostics and results: miette reports for people, JSON for machines.

use std::io::{IsTerminal, Write};

use miette::{GraphicalReportHandler, GraphicalTheme};

use super::args::Format;
use crate::diagnostics::{Diagnostic, Diagnostics};

/// Exit codes of DESIGN.md.
pub(super) const EXIT_OK: i32 = 0;
pub(super) const EXIT_FAILED: i32 = 1;
pub(super) const EXIT_INVALID: i32 = 2;
pub(super) const EXIT_CANCELLED: i32 = 130;

/// Renders one diagnostic as miette's graphical report (colour only on a terminal).
pub(super) fn render(diagnostic: &Diagnostic) -> String {
    let theme = if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1);
    let mut out = String::new();
    if handler.render_report(&mut out, diagnostic).is_err() {
        out = format!("{diagnostic:?}\n");
    }
    out
}

/// Prints diagnostics to stderr (human) — JSON callers use [`diagnostics_json`] instead.
pub(super) fn print_diagnostics(diagnostics: &Diagnostics) {
    let mut stderr = std::io::stderr().lock();
    for d in &diagnostics.0 {
        let _ = writeln!(stderr, "{}", render(d));
    }
}

pub(super) fn diagnostics_json(diagnostics: &Diagnostics) -> serde_json::Value {
    serde_json::Value::Array(diagnostics.0.iter().map(Diagnostic::to_json).collect())
}

/// Reports a failure of the input and returns the exit code for it.
pub(super) fn fail(format: Format, diagnostics: &Diagnostics) -> i32 {
    match format {
        Format::Human => {
            print_diagnostics(diagnostics);
            let errors = diagnostics.errors().count();
            eprintln!("orrery: {errors} error(s); nothing ran");
        }
        Format::Json => {
            print_json(&serde_json::json!({
                "ok": false,
                "diagnostics": diagnostics_json(diagnostics),
            }));
        }
    }
    EXIT_INVALID
}

pub(super) fn print_json(value: &serde_json::Value) {
    let mut stdout = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut stdout, value);
    let _ = writeln!(stdout);
}
