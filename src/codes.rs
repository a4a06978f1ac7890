//! Every diagnostic code orrery reports, by stage. `validate --format json` publishes them (the
//! `code` of each finding), so they are names users and tools match on: changed only with care.

/// Declares each stage's codes as constants and lists them all in [`ALL`], from one list.
macro_rules! codes {
    ($($stage:ident { $($name:ident = $code:literal,)* })*) => {
        $(pub mod $stage { $(pub const $name: &str = $code;)* })*

        /// Every code above, for the checks below and for tools that list them.
        pub const ALL: &[&str] = &[$($($stage::$name,)*)*];
    };
}

codes! {
    adapter {
        CONFIG = "adapter::config",
        CONNECTION = "adapter::connection",
        INTERRUPTED = "adapter::interrupted",
        QUERY = "adapter::query",
        UNSUPPORTED = "adapter::unsupported",
    }
    artifacts {
        REMOTE = "artifacts::remote",
        WRITE = "artifacts::write",
    }
    callback {
        INVALID = "callback::invalid",
        POOL = "callback::pool",
    }
    cli {
        EVENT = "cli::event",
        VARS = "cli::vars",
    }
    exec {
        CYCLE = "exec::cycle",
        DUPLICATE_TASK = "exec::duplicate_task",
        THREAD_POOL = "exec::thread_pool",
        UNKNOWN_DEPENDENCY = "exec::unknown_dependency",
    }
    export {
        WRITE = "export::write",
    }
    graph {
        CYCLE = "graph::cycle",
        DISABLED_DEPENDENCY = "graph::disabled_dependency",
        DUPLICATE = "graph::duplicate",
        EMPTY_SELECTOR = "graph::empty_selector",
        INVALID_SELECTOR = "graph::invalid_selector",
        UNKNOWN_CONFIG_KEY = "graph::unknown_config_key",
        UNKNOWN_DEPENDENCY = "graph::unknown_dependency",
        UNSUPPORTED_SELECTOR = "graph::unsupported_selector",
    }
    io {
        READ = "io::read",
    }
    plan {
        FORMAT_VERSION = "plan::format_version",
        HARD_DELETES = "plan::hard_deletes",
        INVALID = "plan::invalid",
        NOT_COMPILED = "plan::not_compiled",
        ON_SCHEMA_CHANGE = "plan::on_schema_change",
        REMOTE = "plan::remote",
        SEED_CSV = "plan::seed_csv",
        SNAPSHOT_CHECK_ALL = "plan::snapshot_check_all",
        SNAPSHOT_STRATEGY = "plan::snapshot_strategy",
        SNAPSHOT_UNIQUE_KEY = "plan::snapshot_unique_key",
        SNAPSHOT_UPDATED_AT = "plan::snapshot_updated_at",
        STORE_FAILURES = "plan::store_failures",
        UNKNOWN_INCREMENTAL_STRATEGY = "plan::unknown_incremental_strategy",
        UNKNOWN_MATERIALIZATION = "plan::unknown_materialization",
        UNSUPPORTED_ADAPTER = "plan::unsupported_adapter",
        WRITE = "plan::write",
    }
    project {
        NO_NAME = "project::no_name",
        NO_PROFILE = "project::no_profile",
        PROFILE = "project::profile",
        PROFILES_YAML = "project::profiles_yaml",
        PROPERTIES = "project::properties",
        TEST = "project::test",
        UNKNOWN_PROFILE = "project::unknown_profile",
        UNKNOWN_TARGET = "project::unknown_target",
        YAML = "project::yaml",
    }
    render {
        HOOK = "render::hook",
        LATE_BUNDLE = "render::late_bundle",
        MISSING_MACRO = "render::missing_macro",
        RUNTIME_VAR_CONTROL_FLOW = "render::runtime_var_control_flow",
        RUNTIME_VAR_IN_IDENTIFIER = "render::runtime_var_in_identifier",
        SKIPPED = "render::skipped",
        SYNTAX = "render::syntax",
        TEMPLATE = "render::template",
        TEST = "render::test",
        YAML = "render::yaml",
    }
    run {
        FINISH = "run::finish",
        INVALID_DURATION = "run::invalid_duration",
        RUNTIME_VAR_MISSING = "run::runtime_var_missing",
        RUNTIME_VAR_UNBINDABLE = "run::runtime_var_unbindable",
        UNKNOWN_NODE = "run::unknown_node",
    }
    spec {
        CALLBACK_TEMPLATE = "spec::callback_template",
        CALLBACK_URL = "spec::callback_url",
        CONFLICTING_ACTIONS = "spec::conflicting_actions",
        DUPLICATE_CALLBACK = "spec::duplicate_callback",
        DUPLICATE_EVENT = "spec::duplicate_event",
        EMPTY = "spec::empty",
        INVALID = "spec::invalid",
        INVALID_DURATION = "spec::invalid_duration",
        INVALID_TYPE = "spec::invalid_type",
        INVALID_VALUE = "spec::invalid_value",
        MISSING_ACTION = "spec::missing_action",
        MISSING_FILE = "spec::missing_file",
        MISSING_KEY = "spec::missing_key",
        OUT_OF_RANGE = "spec::out_of_range",
        STORE_URL = "spec::store_url",
        SYNTAX = "spec::syntax",
        UNKNOWN_KEY = "spec::unknown_key",
        UNKNOWN_VALUE = "spec::unknown_value",
        UNUSED_KEY = "spec::unused_key",
    }
    state {
        BACKEND = "state::backend",
        CONFLICT = "state::conflict",
        INVALID = "state::invalid",
        LOCK = "state::lock",
        LOCKED = "state::locked",
        READ = "state::read",
        RM = "state::rm",
        STORE = "state::store",
        UNLOCK = "state::unlock",
        WRITE = "state::write",
    }
}

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
