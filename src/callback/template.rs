//! Callback action strings: minijinja templates over the callback context. `validate` parses
//! each one and rejects names the context does not have, so nothing fails at run time for a typo.

use std::sync::OnceLock;

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

use super::context::CONTEXT_KEYS;

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Action strings are argv items, URLs and log lines: never HTML-escaped.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        minijinja_contrib::add_to_environment(&mut env);
        env
    })
}

/// Renders an action string over a context.
pub fn render(text: &str, context: &Value) -> Result<String, String> {
    if !text.contains("{{") && !text.contains("{%") {
        return Ok(text.to_string());
    }
    environment().render_str(text, crate::render::context::json_value(context)).map_err(|e| describe(&e))
}

fn describe(err: &minijinja::Error) -> String {
    match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.to_string(),
    }
}

/// A problem in an action string: the message and a did-you-mean, if any.
#[derive(Debug, PartialEq, Eq)]
pub struct TemplateProblem {
    pub message: String,
    pub help: String,
}

/// Parses an action string and checks every variable it reads is a context key.
pub fn check(text: &str) -> Result<(), TemplateProblem> {
    let template = environment().template_from_str(text).map_err(|e| TemplateProblem {
        message: format!("this template does not parse: {}", describe(&e)),
        help: "fix the Jinja syntax, e.g. `{{ status }}`".into(),
    })?;
    let mut unknown: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| !CONTEXT_KEYS.contains(&name.as_str()) && environment().globals().all(|(g, _)| g != name))
        .collect();
    unknown.sort();
    match unknown.first() {
        None => Ok(()),
        Some(name) => {
            let suggestion = crate::diagnostics::did_you_mean(name, CONTEXT_KEYS.iter().copied());
            let help = match suggestion {
                Some(s) => format!("did you mean `{s}`? the context has: {}", CONTEXT_KEYS.join(", ")),
                None => format!("the context has: {}", CONTEXT_KEYS.join(", ")),
            };
            Err(TemplateProblem { message: format!("`{name}` is not a callback context variable"), help })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_over_the_context_and_rejects_unknown_names() {
        let context = serde_json::json!({ "status": "failure", "relation": { "schema": "main" } });
        assert_eq!(render("{{ status }} in {{ relation.schema }}", &context).unwrap(), "failure in main");
        assert!(render("{{ nope }}", &context).unwrap_err().contains("undefined"));
        assert!(check("{{ status }}/{{ run_id | lower }}").is_ok());
        let problem = check("{{ stauts }}").unwrap_err();
        assert_eq!(problem.message, "`stauts` is not a callback context variable");
        assert!(problem.help.starts_with("did you mean `status`?"));
        assert!(check("{{ status ").unwrap_err().message.starts_with("this template does not parse"));
    }
}
