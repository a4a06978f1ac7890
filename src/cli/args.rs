//! The command line, as clap types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "orrery", version, about = "Compile a dbt project into a static plan and run it")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// The pipeline file.
    #[arg(short = 'p', long = "pipeline", global = true, default_value = "orrery.toml")]
    pub pipeline: PathBuf,
    /// The profile target to use (default: the pipeline's, else the profile's).
    #[arg(long, global = true)]
    pub target: Option<String>,
    /// Variables as YAML, merged over `[project].vars` (as dbt's --vars).
    #[arg(long, global = true)]
    pub vars: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

#[derive(Args, Debug, Clone, Default)]
pub struct Selection {
    /// dbt selectors; replace `[select].include` when given.
    #[arg(short = 's', long = "select", num_args = 1.., action = clap::ArgAction::Append)]
    pub select: Vec<String>,
    /// dbt selectors to leave out; added to `[select].exclude`.
    #[arg(long = "exclude", num_args = 1.., action = clap::ArgAction::Append)]
    pub exclude: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Static checks of pipeline files and their dbt projects; never connects.
    Validate {
        /// Pipeline files (default: --pipeline).
        pipelines: Vec<PathBuf>,
    },
    /// Write target/compiled/**, target/manifest.json and target/plan.json (a run plan).
    Compile {
        #[command(flatten)]
        selection: Selection,
        /// Plan the full-refresh variant of incremental models only.
        #[arg(long)]
        full_refresh: bool,
    },
    /// Execute every selected node (compiling first unless --plan).
    Run {
        #[command(flatten)]
        selection: Selection,
        /// A run plan written by `orrery compile`; the dbt project is then not read.
        #[arg(long)]
        plan: Option<PathBuf>,
        /// Rebuild incremental models from scratch.
        #[arg(long)]
        full_refresh: bool,
        /// Worker threads (default: `[execution].threads`, else the target's, else the cores).
        #[arg(long)]
        threads: Option<usize>,
        /// This run's id (e.g. a scheduler's); default: `YYYYMMDDTHHMMSSZ-xxxxxxxx`.
        #[arg(long)]
        run_id: Option<String>,
        /// JSON given to callbacks as `event`: inline, or `@file`.
        #[arg(long)]
        event: Option<String>,
    },
    /// Print the DAG of the selected nodes.
    Graph {
        #[command(flatten)]
        selection: Selection,
        /// Text syntax (JSON with --format json).
        #[arg(long, value_enum, default_value_t = GraphSyntax::Dot)]
        syntax: GraphSyntax,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphSyntax {
    Dot,
    Mermaid,
}
