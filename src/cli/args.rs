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
    /// How long `run`, `apply` and `state rm` wait for a held state lock, e.g. `30s`.
    #[arg(long, global = true, value_parser = crate::duration::parse, default_value = "0s")]
    pub lock_timeout: std::time::Duration,
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
        /// Run one node of the plan (with `after_each`, its tests too), for an external
        /// scheduler; the state's lock is taken only to record its outcome.
        #[arg(long)]
        node: Option<String>,
        /// End a scheduled run whose tasks ran with --node: fire the pipeline-scope callbacks
        /// with its outcome and copy its artifacts.
        #[arg(long, requires = "run_id", conflicts_with = "node")]
        finish: bool,
    },
    /// Compare the project with the applied state: what `apply` would create, replace, rebuild or drop.
    Plan {
        #[command(flatten)]
        selection: Selection,
        /// Save the change plan here for `orrery apply PLAN`.
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
        /// Exit 0 when nothing changes, 2 when something does, 1 on an error (Terraform's).
        #[arg(long)]
        detailed_exitcode: bool,
        /// Replace this node (id or name) whatever the state says; repeatable.
        #[arg(long = "replace")]
        replace: Vec<String>,
        /// Plan dropping everything in the state.
        #[arg(long)]
        destroy: bool,
        /// Ask the warehouse which relations in the state are missing, and plan them as create.
        #[arg(long)]
        refresh: bool,
    },
    /// Run a saved change plan exactly (or plan, show and ask).
    Apply {
        #[command(flatten)]
        selection: Selection,
        /// A change plan written by `orrery plan -o`; the dbt project is then not read.
        plan: Option<PathBuf>,
        /// Apply without asking.
        #[arg(long)]
        auto_approve: bool,
    },
    /// Print a saved plan as `plan` printed it.
    Show { plan: PathBuf },
    /// Look at or repair the applied state.
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Hand the run plan to another scheduler.
    Export {
        #[command(subcommand)]
        target: ExportTarget,
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

#[derive(Subcommand, Debug)]
pub enum StateCommand {
    /// The state: every node with its materialization, status and time, and the lock.
    Show,
    /// The node ids in the state.
    List,
    /// Forget a node (its relation is left as it is).
    Rm { node: String },
    /// Release a lock left by a process that is gone.
    Unlock { lock_id: String },
}

#[derive(Subcommand, Debug)]
pub enum ExportTarget {
    /// An Airflow DAG file and the run plan it reads, one task per node.
    Airflow {
        #[command(flatten)]
        selection: Selection,
        /// Where to write `<pipeline>.py` and `<pipeline>.plan.json` (default: `dags`).
        #[arg(short = 'o', long = "out", default_value = "dags")]
        out: PathBuf,
        /// A run plan written by `orrery compile` (default: compile now).
        #[arg(long)]
        plan: Option<PathBuf>,
    },
}
