//! Secret values the process knows (`DBT_ENV_SECRET_*` variables, profile credentials read
//! from the environment), scrubbed from every message orrery writes: output, run_results,
//! callback contexts and reports.

use std::borrow::Cow;
use std::sync::{PoisonError, RwLock};

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Shorter values are too likely to match ordinary text.
const MIN_LEN: usize = 4;

pub const MASK: &str = "*****";

/// Remembers a secret value so it is scrubbed from now on.
pub fn register(value: &str) {
    if value.len() < MIN_LEN {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(PoisonError::into_inner);
    if !secrets.iter().any(|s| s == value) {
        secrets.push(value.to_string());
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Registers every `DBT_ENV_SECRET_*` variable of the environment.
pub fn register_environment() {
    for (name, value) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("DBT_ENV_SECRET") {
            register(&value.to_string_lossy());
        }
    }
}

/// `text` with every known secret replaced by `*****`.
pub fn scrub(text: &str) -> String {
    scrub_cow(text).into_owned()
}

pub fn scrub_cow(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.read().unwrap_or_else(PoisonError::into_inner);
    if !secrets.iter().any(|s| text.contains(s.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for secret in secrets.iter() {
        out = out.replace(secret.as_str(), MASK);
    }
    Cow::Owned(out)
}

/// Scrubs every string inside a JSON value.
pub fn scrub_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) => {
            if let Cow::Owned(clean) = scrub_cow(text) {
                *text = clean;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(scrub_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(scrub_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_masked_everywhere() {
        register("hunter2-secret");
        assert_eq!(scrub("login failed for hunter2-secret!"), "login failed for *****!");
        let mut value = serde_json::json!({ "a": ["x hunter2-secret y"] });
        scrub_json(&mut value);
        assert_eq!(value, serde_json::json!({ "a": ["x ***** y"] }));
        assert_eq!(scrub("nothing here"), "nothing here");
    }
}
