//! Python's printf-style string formatting, `"%05.2f" % (x,)`, as dbt's Jinja evaluates it.

use minijinja::value::{Value, ValueKind};
use minijinja::{Error, ErrorKind};

use super::repr::py_repr_str;

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Python's `str()` of a Jinja value.
pub(crate) fn py_str(v: &Value) -> String {
    super::repr::python_display(v).unwrap_or_else(|| v.to_string())
}

fn py_repr(v: &Value) -> String {
    match v.as_str() {
        Some(s) if v.kind() == ValueKind::String => py_repr_str(s),
        _ => py_str(v),
    }
}

/// The widest field and the longest precision a template may ask for: Python allows more, but a
/// width of `%9999999999d` would ask for gigabytes.
pub(crate) const MAX_WIDTH: usize = 10_000;

struct Spec {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    alt: bool,
    width: usize,
    precision: Option<usize>,
}

/// A width or precision: digits, or `*` for the next positional value (a negative width
/// read from `*` sets `left`, as in Python; a negative precision is none).
fn field_number(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    next: &mut dyn Iterator<Item = &Value>,
    what: &str,
    left: &mut bool,
) -> Result<Option<usize>, Error> {
    if chars.peek() == Some(&'*') {
        chars.next();
        let value = next.next().ok_or_else(|| err("not enough arguments for format string"))?;
        if !matches!(value.kind(), ValueKind::Number | ValueKind::Bool) || jinja_is_float(value) {
            return Err(err("* wants int"));
        }
        let n = i128::try_from(value.clone()).map_err(|_| err("* wants int"))?;
        if n < 0 {
            if what == "precision" {
                return Ok(Some(0));
            }
            *left = true;
        }
        let n = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
        if n > MAX_WIDTH {
            return Err(err(format!("{what} {n} is too big: at most {MAX_WIDTH}")));
        }
        return Ok(Some(n));
    }
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        chars.next();
        let value = n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize);
        if value > MAX_WIDTH {
            return Err(err(format!("{what} too big: at most {MAX_WIDTH}")));
        }
        n = Some(value);
    }
    Ok(n)
}

/// `fmt % args`: a tuple gives the positional values, a mapping the `%(name)s` ones.
pub(crate) fn percent(fmt: &str, args: &Value) -> Result<String, Error> {
    let positional: Vec<Value> = if args.is_tuple() { args.try_iter()?.collect() } else { vec![args.clone()] };
    // Python takes any non-tuple argument that has items (not a string) as the mapping.
    let mapping = !args.is_tuple() && matches!(args.kind(), ValueKind::Map | ValueKind::Seq);
    let mut next = positional.iter();
    let mut out = String::with_capacity(fmt.len() + 16);
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut key = None;
        if chars.peek() == Some(&'(') {
            chars.next();
            let mut depth = 1;
            let mut name = String::new();
            loop {
                let c = chars.next().ok_or_else(|| err("incomplete format key"))?;
                match c {
                    '(' => depth += 1,
                    ')' if depth == 1 => break,
                    ')' => depth -= 1,
                    _ => {}
                }
                name.push(c);
            }
            key = Some(name);
        }
        let mut spec = Spec { left: false, zero: false, plus: false, space: false, alt: false, width: 0, precision: None };
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.left = true,
                '0' => spec.zero = true,
                '+' => spec.plus = true,
                ' ' => spec.space = true,
                '#' => spec.alt = true,
                _ => break,
            }
            chars.next();
        }
        if key.is_some() && chars.peek() == Some(&'*') {
            return Err(err("* not allowed with a mapping key"));
        }
        spec.width = field_number(&mut chars, &mut next, "width", &mut spec.left)?.unwrap_or(0);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.precision = Some(field_number(&mut chars, &mut next, "precision", &mut spec.left)?.unwrap_or(0));
        }
        while matches!(chars.peek(), Some('h' | 'l' | 'L')) {
            chars.next();
        }
        let conv = chars.next().ok_or_else(|| err("incomplete format"))?;
        if conv == '%' {
            out.push('%');
            continue;
        }
        let value = match &key {
            Some(k) => {
                if !mapping {
                    return Err(err("format requires a mapping"));
                }
                args.get_item(&Value::from(k.as_str()))
                    .ok()
                    .filter(|v| !v.is_undefined())
                    .ok_or_else(|| err(format!("format key {k:?} not found")))?
            }
            None => next.next().cloned().ok_or_else(|| err("not enough arguments for format string"))?,
        };
        let body = convert(conv, &value, &spec)?;
        pad(&mut out, body, &spec, matches!(conv, 's' | 'r' | 'a' | 'c'));
    }
    if next.next().is_some() && !mapping {
        return Err(err("not all arguments converted during string formatting"));
    }
    Ok(out)
}
/// Whether a number value holds a float (Python's `float`, not `int`).
fn jinja_is_float(v: &Value) -> bool {
    v.is_number() && !v.is_integer()
}

fn number(conv: char, v: &Value) -> Result<f64, Error> {
    if !matches!(v.kind(), ValueKind::Number | ValueKind::Bool) {
        return Err(err(format!("%{conv} format: a real number is required, not {}", v.kind())));
    }
    f64::try_from(v.clone())
        .or_else(|_| i128::try_from(v.clone()).map(|i| i as f64))
        .map_err(|_| err(format!("%{conv} format: a number is required")))
}

/// The decimal digits (no sign) of an integer conversion's value and whether it is negative:
/// Python's `int()` of a float is exact, however large.
fn integer_digits(conv: char, v: &Value) -> Result<(bool, String), Error> {
    if !matches!(v.kind(), ValueKind::Number | ValueKind::Bool) {
        return Err(err(format!("%{conv} format: a real number is required, not {}", v.kind())));
    }
    if jinja_is_float(v) {
        let x = number(conv, v)?;
        if !x.is_finite() {
            return Err(err(format!("cannot convert float {} to integer", if x.is_nan() { "NaN" } else { "infinity" })));
        }
        let t = x.trunc();
        return Ok((t < 0.0, format!("{:.0}", t.abs())));
    }
    let n = integer(conv, v)?;
    Ok((n < 0, n.unsigned_abs().to_string()))
}

/// An integer (or a boolean) value; floats and anything else are a type error.
fn integer(conv: char, v: &Value) -> Result<i128, Error> {
    if !matches!(v.kind(), ValueKind::Number | ValueKind::Bool) || jinja_is_float(v) {
        let kind = if jinja_is_float(v) { "float".to_string() } else { v.kind().to_string() };
        return Err(err(format!("%{conv} format: an integer is required, not {kind}")));
    }
    i128::try_from(v.clone()).map_err(|_| err(format!("%{conv} format: an integer is required")))
}

fn signed(n_negative: bool, digits: String, spec: &Spec) -> String {
    let sign = if n_negative {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    format!("{sign}{digits}")
}

/// Digits left-padded with zeros to an integer conversion's precision (its minimum digits).
fn min_digits(digits: String, precision: Option<usize>) -> String {
    match precision {
        Some(p) if p > digits.len() => format!("{}{digits}", "0".repeat(p - digits.len())),
        _ => digits,
    }
}

/// Python's `%e` body: mantissa, `e`, sign and at least two exponent digits; `alt` keeps the
/// decimal point when no digit follows it.
fn exp_form(x: f64, precision: usize, alt: bool, upper: bool) -> String {
    let s = format!("{:.*e}", precision, x.abs());
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    let point = if alt && !m.contains('.') { "." } else { "" };
    let out = format!("{m}{point}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    if upper { out.to_uppercase() } else { out }
}

fn general(x: f64, precision: usize, alt: bool, upper: bool) -> String {
    let p = precision.max(1);
    if x == 0.0 {
        return if alt { format!("{:.*}", p - 1, 0.0) + if p == 1 { "." } else { "" } } else { "0".into() };
    }
    let sci = format!("{:.*e}", p - 1, x.abs());
    let exp: i32 = sci.split_once('e').and_then(|(_, e)| e.parse().ok()).unwrap_or(0);
    let strip = |s: String| {
        if alt {
            if s.contains('.') { s } else { s + "." }
        } else if !s.contains('.') {
            s
        } else {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    };
    if exp >= -4 && exp < p as i32 {
        strip(format!("{:.*}", (p as i32 - 1 - exp).max(0) as usize, x.abs()))
    } else {
        let e = exp_form(x.abs(), p - 1, false, upper);
        let (m, rest) = e.split_at(e.find(['e', 'E']).unwrap_or(e.len()));
        format!("{}{rest}", strip(m.to_string()))
    }
}

fn convert(conv: char, v: &Value, spec: &Spec) -> Result<String, Error> {
    Ok(match conv {
        's' => truncate(py_str(v), spec.precision),
        'r' => truncate(py_repr(v), spec.precision),
        'a' => truncate(ascii(&py_repr(v)), spec.precision),
        'c' => match v.as_str() {
            Some(s) if v.kind() == ValueKind::String && s.chars().count() == 1 => s.to_string(),
            Some(_) if v.kind() == ValueKind::String => return Err(err("%c requires an int or a unicode character")),
            _ => {
                let n = integer(conv, v)?;
                u32::try_from(n).ok().and_then(char::from_u32).map(String::from).ok_or_else(|| err("%c arg not in range(0x110000)"))?
            }
        },
        'd' | 'i' | 'u' => {
            let (negative, digits) = integer_digits(conv, v)?;
            signed(negative, min_digits(digits, spec.precision), spec)
        }
        'x' | 'X' | 'o' => {
            let n = integer(conv, v)?;
            let a = n.unsigned_abs();
            let digits = match conv {
                'x' => format!("{a:x}"),
                'X' => format!("{a:X}"),
                _ => format!("{a:o}"),
            };
            let prefix = match (spec.alt, conv) {
                (false, _) => "",
                (true, 'x') => "0x",
                (true, 'X') => "0X",
                (true, _) => "0o",
            };
            signed(n < 0, format!("{prefix}{}", min_digits(digits, spec.precision)), spec)
        }
        'f' | 'F' | 'e' | 'E' | 'g' | 'G' => {
            let x = number(conv, v)?;
            let p = spec.precision.unwrap_or(6);
            let digits = if x.is_nan() {
                "nan".into()
            } else if x.is_infinite() {
                "inf".into()
            } else {
                match conv {
                    'f' | 'F' => format!("{:.*}", p, x.abs()) + if spec.alt && p == 0 { "." } else { "" },
                    'e' | 'E' => exp_form(x, p, spec.alt, conv == 'E'),
                    _ => general(x, p, spec.alt, conv == 'G'),
                }
            };
            let digits = if conv.is_uppercase() { digits.to_uppercase() } else { digits };
            signed(x.is_sign_negative() && !x.is_nan(), digits, spec)
        }
        other => return Err(err(format!("unsupported format character {other:?}"))),
    })
}

/// Python's `ascii()` of a repr: every non-ASCII character escaped.
fn ascii(repr: &str) -> String {
    let mut out = String::with_capacity(repr.len());
    for c in repr.chars() {
        match c as u32 {
            0..0x80 => out.push(c),
            n @ 0x80..0x100 => out.push_str(&format!("\\x{n:02x}")),
            n @ 0x100..0x10000 => out.push_str(&format!("\\u{n:04x}")),
            n => out.push_str(&format!("\\U{n:08x}")),
        }
    }
    out
}

fn truncate(s: String, precision: Option<usize>) -> String {
    match precision {
        Some(p) => s.chars().take(p).collect(),
        None => s,
    }
}

fn pad(out: &mut String, body: String, spec: &Spec, text: bool) {
    let len = body.chars().count();
    if len >= spec.width {
        out.push_str(&body);
    } else if spec.left {
        out.push_str(&body);
        out.extend(std::iter::repeat_n(' ', spec.width - len));
    } else if spec.zero && !text {
        let sign_len = body.find(|c: char| c.is_ascii_alphanumeric()).unwrap_or(0);
        let prefix =
            if body[sign_len..].starts_with(['0']) && body[sign_len..].len() > 1 && body[sign_len + 1..].starts_with(['x', 'X', 'o']) {
                2
            } else {
                0
            };
        let split = sign_len + prefix;
        out.push_str(&body[..split]);
        out.extend(std::iter::repeat_n('0', spec.width - len));
        out.push_str(&body[split..]);
    } else {
        out.extend(std::iter::repeat_n(' ', spec.width - len));
        out.push_str(&body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(items: Vec<Value>) -> Value {
        Value::from(minijinja::value::Tuple::from(items))
    }

    #[test]
    fn formats_like_python() {
        let f = |fmt: &str, v: Value| percent(fmt, &v).unwrap_or_else(|e| format!("error: {e}"));
        assert_eq!(f("%s-%s", tuple(vec![Value::from(1), Value::from("a")])), "1-a");
        assert_eq!(f("%05.2f", tuple(vec![Value::from(3.14259)])), "03.14");
        assert_eq!(f("%d%%", Value::from(5)), "5%");
        assert_eq!(f("%r", Value::from("x")), "'x'");
        assert_eq!(f("%-5s|", Value::from("ab")), "ab   |");
        assert_eq!(f("%x %o %e", tuple(vec![Value::from(255), Value::from(8), Value::from(12345.678)])), "ff 10 1.234568e+04");
        assert_eq!(f("%s", Value::from(())), "None");
        assert_eq!(f("%i", Value::from(3.9)), "3");
        assert_eq!(f("%g|%g|%g", tuple(vec![Value::from(0.0001), Value::from(123456789.0), Value::from(2.5)])), "0.0001|1.23457e+08|2.5");
        assert_eq!(f("%+05d", Value::from(-42)), "-0042");
        assert!(f("%s %s", tuple(vec![Value::from(1)])).starts_with("error"));
    }
}
