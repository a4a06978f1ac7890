//! The clap commands, human and JSON output, exit codes.

mod args;
mod deploy;
mod output;
mod run;
mod session;

use clap::Parser;

pub use args::{Cli, Command, ExportTarget, Format, Global, GraphSyntax, Selection, StateCommand};
use output::{EXIT_INVALID, EXIT_OK, fail, print_diagnostics, print_json};

use crate::diagnostics::Diagnostics;

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() { EXIT_INVALID } else { EXIT_OK };
        }
    };
    match &cli.command {
        Command::Validate { pipelines } => validate(&cli.global, pipelines),
        Command::Compile { selection, full_refresh } => compile(&cli.global, selection, *full_refresh),
        Command::Graph { selection, syntax } => graph(&cli.global, selection, *syntax),
        Command::Plan { selection, out, detailed_exitcode, replace, destroy, refresh } => {
            let args = deploy::PlanArgs {
                out: out.as_deref(),
                detailed_exitcode: *detailed_exitcode,
                replace,
                destroy: *destroy,
                refresh: *refresh,
            };
            deploy::plan(&cli.global, selection, &args)
        }
        Command::Apply { selection, plan, auto_approve } => deploy::apply(&cli.global, selection, plan.as_deref(), *auto_approve),
        Command::Show { plan } => deploy::show(&cli.global, plan),
        Command::Export { target: ExportTarget::Airflow { selection, out, plan } } => {
            run::export_airflow(&cli.global, selection, out, plan.as_deref())
        }
        Command::State { command } => deploy::state(&cli.global, command),
        Command::Run { selection, plan, full_refresh, threads, run_id, event, node, finish } => {
            let options = run::RunOptions {
                plan: plan.as_deref(),
                full_refresh: *full_refresh,
                threads: *threads,
                run_id: run_id.clone(),
                event: event.clone(),
                node: node.clone(),
                finish: *finish,
            };
            run::run(&cli.global, selection, &options)
        }
    }
}

fn validate(global: &Global, pipelines: &[std::path::PathBuf]) -> i32 {
    let mut all = Diagnostics::new();
    // Nodes rendered at run time (their templates ask the warehouse): notes, not findings.
    let mut late: Vec<(String, String)> = Vec::new();
    for path in session::pipeline_paths(global, pipelines) {
        match session::build(global, &path, false) {
            Ok(build) => {
                late.extend(build.compiled.nodes.iter().filter_map(|n| Some((n.unique_id.clone(), n.late.as_ref()?.call.clone()))));
                match session::select(&build, &Selection::default()) {
                    Ok((graph, _)) => {
                        if let Err(diagnostics) = session::callback_nodes(&build, &graph) {
                            all.extend(diagnostics);
                        }
                    }
                    Err(diagnostics) => all.extend(diagnostics),
                }
                all.extend(build.warnings);
            }
            Err(diagnostics) => all.extend(diagnostics),
        }
    }
    all.sort();
    let ok = !all.has_errors();
    match global.format {
        Format::Human => {
            print_diagnostics(&all);
            for (id, call) in &late {
                eprintln!("note: {id} is rendered at run time: {call} asks the warehouse");
            }
            if ok {
                let warnings = all.warnings().count();
                eprintln!("orrery: valid ({warnings} warning(s))");
            } else {
                eprintln!("orrery: {} error(s)", all.errors().count());
            }
        }
        Format::Json => print_json(&serde_json::json!({
            "ok": ok,
            "diagnostics": output::diagnostics_json(&all),
            "rendered_at_run_time": late.iter().map(|(id, call)| serde_json::json!({ "id": id, "call": call })).collect::<Vec<_>>(),
        })),
    }
    if ok { EXIT_OK } else { EXIT_INVALID }
}

fn compile(global: &Global, selection: &Selection, full_refresh: bool) -> i32 {
    let build = match session::build(global, &global.pipeline, full_refresh) {
        Ok(build) => build,
        Err(diagnostics) => return fail(global.format, &diagnostics),
    };
    let code = match run::write_compile_artifacts(&build, selection, full_refresh) {
        Ok(summary) => {
            match global.format {
                Format::Human => {
                    print_diagnostics(&build.warnings);
                    eprintln!("{summary}");
                }
                Format::Json => print_json(&serde_json::json!({
                    "ok": true,
                    "summary": summary,
                    "diagnostics": output::diagnostics_json(&build.warnings),
                })),
            }
            EXIT_OK
        }
        Err(diagnostics) => fail(global.format, &diagnostics),
    };
    build.discard();
    code
}

fn graph(global: &Global, selection: &Selection, syntax: GraphSyntax) -> i32 {
    let build = match session::build(global, &global.pipeline, false) {
        Ok(build) => build,
        Err(diagnostics) => return fail(global.format, &diagnostics),
    };
    let (graph, selected) = match session::select(&build, selection) {
        Ok(selected) => selected,
        Err(diagnostics) => return fail(global.format, &diagnostics),
    };
    match (global.format, syntax) {
        (Format::Json, _) => print_json(&graph.to_json(&selected)),
        (Format::Human, GraphSyntax::Dot) => print!("{}", graph.to_dot(&selected)),
        (Format::Human, GraphSyntax::Mermaid) => print!("{}", graph.to_mermaid(&selected)),
    }
    EXIT_OK
}
