//! Durations a user writes (`5s`, `1h 30m`) in orrery.toml, on the command line and in plan
//! files: humantime's syntax, bounded so that adding one to a clock can never overflow.

use std::time::Duration;

/// The longest duration accepted anywhere: a year of 365 days.
pub const MAX: Duration = Duration::from_secs(365 * 24 * 3600);

/// `text` as a duration: a number and a unit, at most [`MAX`]; the error says why not (the
/// caller names the text and where it was written).
pub fn parse(text: &str) -> Result<Duration, String> {
    let value = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if value > MAX {
        return Err("too long: at most 365 days".into());
    }
    Ok(value)
}

/// The instant `after` from now; a longer wait than a century is a century (never an overflow).
pub fn deadline(after: Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    now.checked_add(after).unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_bounded() {
        assert_eq!(parse("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("365days"), Ok(MAX));
        assert_eq!(parse("366d"), Err("too long: at most 365 days".to_string()));
        assert_eq!(parse("500000000000y"), Err("too long: at most 365 days".to_string()));
        assert!(deadline(Duration::MAX) > std::time::Instant::now());
        assert!(parse("5 parsecs").is_err_and(|e| e.contains("parsecs")));
    }
}
