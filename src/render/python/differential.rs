//! The Python stand-ins (`%` formatting, `modules.datetime`) checked against CPython itself:
//! thousands of generated expressions, each rendered through the compile's environment and
//! evaluated by the Python the test command installs (`ORRERY_TEST_PYTHON`, else `python3`).
//! Where Python raises, the template must fail (an error, never a panic); elsewhere its output
//! must be Python's, byte for byte. Widths and precisions above `pyformat::MAX_WIDTH` are a
//! stated cap (an error where Python would pad), so the cases stay below it.

use std::io::Write;
use std::process::{Command, Stdio};

use super::format::MAX_WIDTH;

/// splitmix64: a fixed sequence, so a failure names a case that comes back every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
}

/// A float literal both languages read as the same double.
fn float_literal(x: f64) -> String {
    let text = format!("{x:?}");
    if x.is_sign_negative() { format!("({text})") } else { text }
}

fn int_literal(n: i64) -> String {
    if n < 0 { format!("({n})") } else { n.to_string() }
}

fn value(rng: &mut Rng, conv: char) -> String {
    const INTS: [i64; 14] =
        [0, 1, -1, 7, 42, -42, 255, 65, 1_000_000, -123_456_789, 2_147_483_648, 9_007_199_254_740_993, -4_611_686_018_427_387_904, 97];
    const FLOATS: [f64; 22] = [
        0.0, -0.0, 0.5, 1.5, 2.5, 0.125, 0.375, -1.25, 3.14259, 1e-5, 1.23e-7, 123456.789, 1e16, 1.5e20, -2.5e-3, 9.995, 0.05, 0.1, 1e300,
        65.0, 99.99, 1e-300,
    ];
    const STRINGS: [&str; 7] = ["''", "'a'", "'abc'", "\"it's\"", "'Ünï'", "'x y'", "'A'"];
    let kind = match conv {
        // Mostly the kind the conversion wants, sometimes another (Python's type errors).
        _ if rng.chance(15) => rng.below(5),
        'd' | 'i' | 'u' | 'x' | 'X' | 'o' | 'c' => *rng.pick(&[0, 0, 0, 1, 3]),
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => *rng.pick(&[0, 1, 1, 1]),
        _ => rng.below(5),
    };
    match kind {
        0 if conv == 'c' => int_literal(rng.range(32, 126)),
        0 if rng.chance(50) => int_literal(*rng.pick(&INTS)),
        0 => int_literal(rng.range(-100_000, 100_000)),
        1 if rng.chance(50) => float_literal(*rng.pick(&FLOATS)),
        1 => {
            let mantissa = rng.range(-999_999, 999_999) as f64 / 1000.0;
            float_literal(mantissa * 10f64.powi(rng.range(-12, 22) as i32))
        }
        2 => rng.pick(&STRINGS).to_string(),
        3 => rng.pick(&["True", "False"]).to_string(),
        _ => "None".to_string(),
    }
}

/// One `'…' % args` expression.
fn format_case(rng: &mut Rng) -> String {
    const CONVERSIONS: &[char] = &['s', 'd', 'i', 'u', 'x', 'X', 'o', 'e', 'E', 'f', 'F', 'g', 'G', 'c', 'r', 'a'];
    let mapping = rng.chance(10);
    let mut fmt = String::new();
    let mut args = Vec::new();
    let mut keyed = Vec::new();
    for i in 0..rng.range(1, 3) {
        if rng.chance(30) {
            fmt.push_str(rng.pick::<&str>(&["ab", " ", "%%", "x-", ":"]));
        }
        fmt.push('%');
        let conv = if rng.chance(2) { *rng.pick(&['q', 'z', 'y']) } else { *rng.pick(CONVERSIONS) };
        if mapping {
            fmt.push_str(&format!("(k{i})"));
        }
        for flag in ['-', '0', '+', ' ', '#'] {
            if rng.chance(15) {
                fmt.push(flag);
            }
        }
        if !mapping && rng.chance(5) {
            fmt.push('*');
            args.push(int_literal(rng.range(-12, 12)));
        } else if rng.chance(50) {
            fmt.push_str(&rng.range(0, 25).to_string());
        }
        if !mapping && rng.chance(5) {
            fmt.push_str(".*");
            args.push(int_literal(rng.range(0, 12)));
        } else if rng.chance(45) {
            fmt.push_str(&format!(".{}", rng.range(0, 18)));
        }
        fmt.push(conv);
        let v = value(rng, conv);
        if mapping { keyed.push(format!("'k{i}': {v}")) } else { args.push(v) }
    }
    if rng.chance(30) {
        fmt.push_str(rng.pick::<&str>(&["ab", "%%", " z"]));
    }
    // Sometimes one argument too few or too many.
    if !mapping && rng.chance(4) {
        args.pop();
    } else if !mapping && rng.chance(4) {
        args.push("1".into());
    }
    let fmt = format!("'{fmt}'");
    if mapping {
        format!("{fmt} % {{{}}}", keyed.join(", "))
    } else if args.len() == 1 && rng.chance(50) && !args[0].starts_with('(') {
        format!("{fmt} % {}", args[0])
    } else {
        format!("{fmt} % ({},)", args.join(", "))
    }
}

fn date_args(rng: &mut Rng) -> (i64, i64, i64) {
    let year = if rng.chance(10) { *rng.pick(&[1, 2, 999, 1000, 9998, 9999, 0, 10000]) } else { rng.range(1, 9999) };
    let day = if rng.chance(5) { rng.range(29, 32) } else { rng.range(1, 28) };
    (year, if rng.chance(3) { 13 } else { rng.range(1, 12) }, day)
}

fn date(rng: &mut Rng) -> String {
    let (y, m, d) = date_args(rng);
    format!("modules.datetime.date({y}, {m}, {d})")
}

fn datetime(rng: &mut Rng) -> String {
    let (y, m, d) = date_args(rng);
    let (h, mi, s) = (rng.range(0, 23), rng.range(0, 59), rng.range(0, 59));
    let us = if rng.chance(50) { 0 } else { rng.range(0, 999_999) };
    format!("modules.datetime.datetime({y}, {m}, {d}, {h}, {mi}, {s}, {us})")
}

fn delta(rng: &mut Rng) -> String {
    let mut parts = Vec::new();
    let units = ["days", "seconds", "microseconds", "milliseconds", "minutes", "hours", "weeks"];
    for _ in 0..rng.range(1, 3) {
        let unit = rng.pick(&units);
        if parts.iter().any(|p: &String| p.starts_with(&format!("{unit}="))) {
            continue;
        }
        let amount = match rng.below(10) {
            0 => int_literal(*rng.pick(&[999_999_999, -999_999_999, 1_000_000_000, 3_652_059, -3_652_059, 2_932_896])),
            1 => float_literal(*rng.pick(&[0.5, 1.25, -2.75, 0.001])),
            2..=4 => int_literal(rng.range(-1_000_000, 1_000_000)),
            _ => int_literal(rng.range(-400, 400)),
        };
        parts.push(format!("{unit}={amount}"));
    }
    format!("modules.datetime.timedelta({})", parts.join(", "))
}

/// One `modules.datetime` expression, printed as Python's `str()` through `'%s' %`.
fn datetime_case(rng: &mut Rng) -> String {
    let expr = match rng.below(14) {
        0 => date(rng),
        1 => datetime(rng),
        2 => delta(rng),
        3 => format!("{} + {}", date(rng), delta(rng)),
        4 => format!("{} - {}", date(rng), delta(rng)),
        5 => format!("{} + {}", datetime(rng), delta(rng)),
        6 => format!("{} - {}", datetime(rng), delta(rng)),
        7 => format!("{} - {}", datetime(rng), datetime(rng)),
        8 => format!("{} - {}", date(rng), date(rng)),
        9 => format!("{} {} {}", delta(rng), rng.pick(&["+", "-"]), delta(rng)),
        10 => format!("({}).{}", delta(rng), rng.pick(&["days", "seconds", "microseconds", "total_seconds()"])),
        11 => format!("{}.{}", date(rng), rng.pick(&["isoformat()", "weekday()", "isoweekday()", "toordinal()", "year", "month", "day"])),
        12 => format!(
            "{}.strftime('{}')",
            datetime(rng),
            rng.pick(&["%Y-%m-%d", "%Y%m%d %H:%M:%S", "%d/%m/%y", "%j %U %w", "%A %B %a %b", "%I %p", "%f", "%%Y"])
        ),
        _ => format!("{}.isoformat()", datetime(rng)),
    };
    // `%r`, so a float prints as Python's repr, not as minijinja writes numbers.
    let conv = if expr.ends_with("total_seconds()") { 'r' } else { 's' };
    format!("'%{conv}' % ({expr},)")
}

/// Python's answer for each expression: `Ok(str)` or `Err(exception name)`.
fn cpython(exprs: &[String]) -> Vec<Result<String, String>> {
    const PROGRAM: &str = r#"
import datetime, json, sys, types
modules = types.SimpleNamespace(datetime=datetime)
out = []
for expr in json.load(sys.stdin):
    try:
        out.append({"ok": str(eval(expr, {"modules": modules}))})
    except Exception as e:
        out.append({"err": type(e).__name__})
json.dump(out, sys.stdout)
"#;
    let python = std::env::var("ORRERY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(&python)
        .args(["-c", PROGRAM])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {python} (set ORRERY_TEST_PYTHON, or run scripts/test.sh): {e}"));
    let input = serde_json::to_vec(exprs).expect("json");
    child.stdin.take().expect("stdin").write_all(&input).expect("write to python");
    let output = child.wait_with_output().expect("python ran");
    assert!(output.status.success(), "python failed");
    let answers: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).expect("python's json");
    answers
        .into_iter()
        .map(|a| match a.get("ok").and_then(|v| v.as_str()) {
            Some(text) => Ok(text.to_string()),
            None => Err(a["err"].as_str().unwrap_or("?").to_string()),
        })
        .collect()
}

fn ours(env: &minijinja::Environment<'static>, expr: &str) -> Result<String, String> {
    let (text, _) = super::super::templates::prepared(&format!("{{{{ {expr} }}}}"));
    env.render_str(&text, ()).map_err(|e| e.to_string())
}

fn compare(exprs: Vec<String>) {
    let env = super::super::env::new_environment(chrono::Utc::now(), "differential", false);
    let expected = cpython(&exprs);
    assert_eq!(expected.len(), exprs.len());
    let mut differences = Vec::new();
    for (expr, want) in exprs.iter().zip(&expected) {
        let got = ours(&env, expr);
        let same = match (&got, want) {
            (Ok(a), Ok(b)) => a == b,
            (Err(_), Err(_)) => true,
            _ => false,
        };
        if !same {
            differences.push(format!("{expr}\n    python: {want:?}\n    orrery: {got:?}"));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} differ from CPython:\n{}",
        differences.len(),
        exprs.len(),
        differences[..differences.len().min(40)].join("\n")
    );
}

#[test]
fn percent_formatting_is_cpythons() {
    let mut rng = Rng(0x5eed_0001);
    let mut exprs: Vec<String> = (0..4000).map(|_| format_case(&mut rng)).collect();
    exprs.extend(
        [
            "'%5d|%-5d|%05d' % (3, 3, 3)",
            "'%.3d|%#.4x|%#o|%#.0e|%#.0g|%#.0f' % (-5, 5, 8, 12345.0, 1.0, 3.0)",
            "'%(a)s' % {'a': 1}",
            "'abc' % 5",
        ]
        .map(String::from),
    );
    compare(exprs);
}

#[test]
fn datetime_arithmetic_is_cpythons() {
    let mut rng = Rng(0x5eed_0002);
    compare((0..3000).map(|_| datetime_case(&mut rng)).collect());
}

#[test]
fn widths_past_the_cap_are_errors_not_allocations() {
    let env = super::super::env::new_environment(chrono::Utc::now(), "differential", false);
    for expr in [
        format!("'%{}d' % 1", MAX_WIDTH + 1),
        "'%.70000f' % 1.5".into(),
        "'%99999999999999999999d' % 1".into(),
        "'%9999999999d' % 1".into(),
        "'%*d' % (100000, 1)".into(),
    ] {
        let got = ours(&env, &expr);
        assert!(got.as_ref().is_err_and(|e| e.contains("too big")), "{expr}: {got:?}");
    }
    assert_eq!(ours(&env, &format!("'%{MAX_WIDTH}d' % 1")).map(|s| s.len()), Ok(MAX_WIDTH));
}
