//! Every diagnostic code orrery reports, by stage. `validate --format json` publishes them (the
//! `code` of each finding), so they are names users and tools match on: changed only with care.

pub mod adapter {
    pub const CONFIG: &str = "adapter::config";
    pub const CONNECTION: &str = "adapter::connection";
    pub const INTERRUPTED: &str = "adapter::interrupted";
    pub const QUERY: &str = "adapter::query";
    pub const UNSUPPORTED: &str = "adapter::unsupported";
}

pub mod artifacts {
    pub const REMOTE: &str = "artifacts::remote";
    pub const WRITE: &str = "artifacts::write";
}

pub mod callback {
    pub const INVALID: &str = "callback::invalid";
    pub const POOL: &str = "callback::pool";
}

pub mod cli {
    pub const EVENT: &str = "cli::event";
    pub const VARS: &str = "cli::vars";
}

pub mod exec {
    pub const CYCLE: &str = "exec::cycle";
    pub const DUPLICATE_TASK: &str = "exec::duplicate_task";
    pub const THREAD_POOL: &str = "exec::thread_pool";
    pub const UNKNOWN_DEPENDENCY: &str = "exec::unknown_dependency";
}

pub mod export {
    pub const WRITE: &str = "export::write";
}

pub mod graph {
    pub const CYCLE: &str = "graph::cycle";
    pub const DISABLED_DEPENDENCY: &str = "graph::disabled_dependency";
    pub const DUPLICATE: &str = "graph::duplicate";
    pub const EMPTY_SELECTOR: &str = "graph::empty_selector";
    pub const INVALID_SELECTOR: &str = "graph::invalid_selector";
    pub const UNKNOWN_CONFIG_KEY: &str = "graph::unknown_config_key";
    pub const UNKNOWN_DEPENDENCY: &str = "graph::unknown_dependency";
    pub const UNSUPPORTED_SELECTOR: &str = "graph::unsupported_selector";
}

pub mod io {
    pub const READ: &str = "io::read";
}

pub mod plan {
    pub const FORMAT_VERSION: &str = "plan::format_version";
    pub const HARD_DELETES: &str = "plan::hard_deletes";
    pub const INVALID: &str = "plan::invalid";
    pub const NOT_COMPILED: &str = "plan::not_compiled";
    pub const ON_SCHEMA_CHANGE: &str = "plan::on_schema_change";
    pub const REMOTE: &str = "plan::remote";
    pub const SEED_CSV: &str = "plan::seed_csv";
    pub const SNAPSHOT_CHECK_ALL: &str = "plan::snapshot_check_all";
    pub const SNAPSHOT_STRATEGY: &str = "plan::snapshot_strategy";
    pub const SNAPSHOT_UNIQUE_KEY: &str = "plan::snapshot_unique_key";
    pub const SNAPSHOT_UPDATED_AT: &str = "plan::snapshot_updated_at";
    pub const STORE_FAILURES: &str = "plan::store_failures";
    pub const UNKNOWN_INCREMENTAL_STRATEGY: &str = "plan::unknown_incremental_strategy";
    pub const UNKNOWN_MATERIALIZATION: &str = "plan::unknown_materialization";
    pub const UNSUPPORTED_ADAPTER: &str = "plan::unsupported_adapter";
    pub const WRITE: &str = "plan::write";
}

pub mod project {
    pub const NO_NAME: &str = "project::no_name";
    pub const NO_PROFILE: &str = "project::no_profile";
    pub const PROFILE: &str = "project::profile";
    pub const PROFILES_YAML: &str = "project::profiles_yaml";
    pub const PROPERTIES: &str = "project::properties";
    pub const TEST: &str = "project::test";
    pub const UNKNOWN_PROFILE: &str = "project::unknown_profile";
    pub const UNKNOWN_TARGET: &str = "project::unknown_target";
    pub const YAML: &str = "project::yaml";
}

pub mod render {
    pub const HOOK: &str = "render::hook";
    pub const MISSING_MACRO: &str = "render::missing_macro";
    pub const RUNTIME_VAR_CONTROL_FLOW: &str = "render::runtime_var_control_flow";
    pub const RUNTIME_VAR_IN_IDENTIFIER: &str = "render::runtime_var_in_identifier";
    pub const SKIPPED: &str = "render::skipped";
    pub const SYNTAX: &str = "render::syntax";
    pub const TEMPLATE: &str = "render::template";
    pub const TEST: &str = "render::test";
    pub const YAML: &str = "render::yaml";
}

pub mod run {
    pub const FINISH: &str = "run::finish";
    pub const INVALID_DURATION: &str = "run::invalid_duration";
    pub const RUNTIME_VAR_MISSING: &str = "run::runtime_var_missing";
    pub const RUNTIME_VAR_UNBINDABLE: &str = "run::runtime_var_unbindable";
    pub const UNKNOWN_NODE: &str = "run::unknown_node";
}

pub mod spec {
    pub const CALLBACK_TEMPLATE: &str = "spec::callback_template";
    pub const CALLBACK_URL: &str = "spec::callback_url";
    pub const CONFLICTING_ACTIONS: &str = "spec::conflicting_actions";
    pub const DUPLICATE_CALLBACK: &str = "spec::duplicate_callback";
    pub const DUPLICATE_EVENT: &str = "spec::duplicate_event";
    pub const EMPTY: &str = "spec::empty";
    pub const INVALID: &str = "spec::invalid";
    pub const INVALID_DURATION: &str = "spec::invalid_duration";
    pub const INVALID_TYPE: &str = "spec::invalid_type";
    pub const INVALID_VALUE: &str = "spec::invalid_value";
    pub const MISSING_ACTION: &str = "spec::missing_action";
    pub const MISSING_FILE: &str = "spec::missing_file";
    pub const MISSING_KEY: &str = "spec::missing_key";
    pub const OUT_OF_RANGE: &str = "spec::out_of_range";
    pub const STORE_URL: &str = "spec::store_url";
    pub const SYNTAX: &str = "spec::syntax";
    pub const UNKNOWN_KEY: &str = "spec::unknown_key";
    pub const UNKNOWN_VALUE: &str = "spec::unknown_value";
    pub const UNUSED_KEY: &str = "spec::unused_key";
}

pub mod state {
    pub const BACKEND: &str = "state::backend";
    pub const CONFLICT: &str = "state::conflict";
    pub const INVALID: &str = "state::invalid";
    pub const LOCK: &str = "state::lock";
    pub const LOCKED: &str = "state::locked";
    pub const READ: &str = "state::read";
    pub const RM: &str = "state::rm";
    pub const STORE: &str = "state::store";
    pub const UNLOCK: &str = "state::unlock";
    pub const WRITE: &str = "state::write";
}

/// Every code above, for the checks below and for tools that list them.
pub const ALL: &[&str] = &[
    adapter::CONFIG,
    adapter::CONNECTION,
    adapter::INTERRUPTED,
    adapter::QUERY,
    adapter::UNSUPPORTED,
    artifacts::REMOTE,
    artifacts::WRITE,
    callback::INVALID,
    callback::POOL,
    cli::EVENT,
    cli::VARS,
    exec::CYCLE,
    exec::DUPLICATE_TASK,
    exec::THREAD_POOL,
    exec::UNKNOWN_DEPENDENCY,
    export::WRITE,
    graph::CYCLE,
    graph::DISABLED_DEPENDENCY,
    graph::DUPLICATE,
    graph::EMPTY_SELECTOR,
    graph::INVALID_SELECTOR,
    graph::UNKNOWN_CONFIG_KEY,
    graph::UNKNOWN_DEPENDENCY,
    graph::UNSUPPORTED_SELECTOR,
    io::READ,
    plan::FORMAT_VERSION,
    plan::HARD_DELETES,
    plan::INVALID,
    plan::NOT_COMPILED,
    plan::ON_SCHEMA_CHANGE,
    plan::REMOTE,
    plan::SEED_CSV,
    plan::SNAPSHOT_CHECK_ALL,
    plan::SNAPSHOT_STRATEGY,
    plan::SNAPSHOT_UNIQUE_KEY,
    plan::SNAPSHOT_UPDATED_AT,
    plan::STORE_FAILURES,
    plan::UNKNOWN_INCREMENTAL_STRATEGY,
    plan::UNKNOWN_MATERIALIZATION,
    plan::UNSUPPORTED_ADAPTER,
    plan::WRITE,
    project::NO_NAME,
    project::NO_PROFILE,
    project::PROFILE,
    project::PROFILES_YAML,
    project::PROPERTIES,
    project::TEST,
    project::UNKNOWN_PROFILE,
    project::UNKNOWN_TARGET,
    project::YAML,
    render::HOOK,
    render::MISSING_MACRO,
    render::RUNTIME_VAR_CONTROL_FLOW,
    render::RUNTIME_VAR_IN_IDENTIFIER,
    render::SKIPPED,
    render::SYNTAX,
    render::TEMPLATE,
    render::TEST,
    render::YAML,
    run::FINISH,
    run::INVALID_DURATION,
    run::RUNTIME_VAR_MISSING,
    run::RUNTIME_VAR_UNBINDABLE,
    run::UNKNOWN_NODE,
    spec::CALLBACK_TEMPLATE,
    spec::CALLBACK_URL,
    spec::CONFLICTING_ACTIONS,
    spec::DUPLICATE_CALLBACK,
    spec::DUPLICATE_EVENT,
    spec::EMPTY,
    spec::INVALID,
    spec::INVALID_DURATION,
    spec::INVALID_TYPE,
    spec::INVALID_VALUE,
    spec::MISSING_ACTION,
    spec::MISSING_FILE,
    spec::MISSING_KEY,
    spec::OUT_OF_RANGE,
    spec::STORE_URL,
    spec::SYNTAX,
    spec::UNKNOWN_KEY,
    spec::UNKNOWN_VALUE,
    spec::UNUSED_KEY,
    state::BACKEND,
    state::CONFLICT,
    state::INVALID,
    state::LOCK,
    state::LOCKED,
    state::READ,
    state::RM,
    state::STORE,
    state::UNLOCK,
    state::WRITE,
];

#[cfg(test)]
mod tests {
    #[test]
    fn codes_are_unique_and_named_by_their_stage() {
        let mut seen = std::collections::HashSet::new();
        for code in super::ALL {
            assert!(seen.insert(*code), "{code} twice");
            let (stage, name) = code.split_once("::").expect("stage::name");
            assert!(!stage.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{code}");
        }
    }
}
