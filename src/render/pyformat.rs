//! Python's printf-style string formatting, `"%05.2f" % (x,)`, as dbt's Jinja evaluates it.

use minijinja::value::{Value, ValueKind};
use minijinja::{Error, ErrorKind};

use super::builtins::python::py_repr_str;

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Python's `str()` of a Jinja value.
pub fn py_str(v: &Value) -> String {
    super::builtins::python_display(v).unwrap_or_else(|| v.to_string())
}

fn py_repr(v: &Value) -> String {
    match v.as_str() {
        Some(s) if v.kind() == ValueKind::String => py_repr_str(s),
        _ => py_str(v),
    }
}

struct Spec {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    alt: bool,
    width: usize,
    precision: Option<usize>,
}

/// `fmt % args`: a tuple gives the positional values, a mapping the `%(name)s` ones.
pub fn percent(fmt: &str, args: &Value) -> Result<String, Error> {
    let positional: Vec<Value> = if args.is_tuple() { args.try_iter()?.collect() } else { vec![args.clone()] };
    let mut next = positional.iter();
    let mut out = String::with_capacity(fmt.len() + 16);
    let mut chars = fmt.chars().peekable();
    let mut used_mapping = false;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut key = None;
        if chars.peek() == Some(&'(') {
            chars.next();
            let name: String = chars.by_ref().take_while(|c| *c != ')').collect();
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
        while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
            spec.width = spec.width * 10 + d as usize;
            chars.next();
        }
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = 0;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                p = p * 10 + d as usize;
                chars.next();
            }
            spec.precision = Some(p);
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
                used_mapping = true;
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
    if !used_mapping && next.next().is_some() && args.is_tuple() {
        return Err(err("not all arguments converted during string formatting"));
    }
    Ok(out)
}

fn number(v: &Value) -> Result<f64, Error> {
    f64::try_from(v.clone()).map_err(|_| err(format!("a number is required, not {}", v.kind())))
}

fn integer(v: &Value) -> Result<i128, Error> {
    if let Ok(i) = i128::try_from(v.clone()) {
        return Ok(i);
    }
    Ok(number(v)?.trunc() as i128)
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

/// Python's `%e` body: mantissa, `e`, sign and at least two exponent digits.
fn exp_form(x: f64, precision: usize, upper: bool) -> String {
    let s = format!("{:.*e}", precision, x.abs());
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    let out = format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    if upper { out.to_uppercase() } else { out }
}

fn general(x: f64, precision: usize, alt: bool, upper: bool) -> String {
    let p = precision.max(1);
    if x == 0.0 {
        return if alt { format!("{:.*}", p - 1, 0.0) } else { "0".into() };
    }
    let sci = format!("{:.*e}", p - 1, x.abs());
    let exp: i32 = sci.split_once('e').and_then(|(_, e)| e.parse().ok()).unwrap_or(0);
    let strip = |s: String| if alt || !s.contains('.') { s } else { s.trim_end_matches('0').trim_end_matches('.').to_string() };
    if exp >= -4 && exp < p as i32 {
        strip(format!("{:.*}", (p as i32 - 1 - exp).max(0) as usize, x.abs()))
    } else {
        let e = exp_form(x.abs(), p - 1, upper);
        let (m, rest) = e.split_at(e.find(['e', 'E']).unwrap_or(e.len()));
        format!("{}{rest}", strip(m.to_string()))
    }
}

fn convert(conv: char, v: &Value, spec: &Spec) -> Result<String, Error> {
    Ok(match conv {
        's' => truncate(py_str(v), spec.precision),
        'r' | 'a' => truncate(py_repr(v), spec.precision),
        'c' => match v.as_str() {
            Some(s) if s.chars().count() == 1 => s.to_string(),
            _ => char::from_u32(u32::try_from(integer(v)?).map_err(|_| err("%c arg not in range"))?)
                .map(String::from)
                .ok_or_else(|| err("%c arg not in range"))?,
        },
        'd' | 'i' | 'u' => {
            let n = integer(v)?;
            signed(n < 0, n.unsigned_abs().to_string(), spec)
        }
        'x' | 'X' | 'o' => {
            let n = integer(v)?;
            let a = n.unsigned_abs();
            let digits = match conv {
                'x' => format!("{}{a:x}", if spec.alt { "0x" } else { "" }),
                'X' => format!("{}{a:X}", if spec.alt { "0X" } else { "" }),
                _ => format!("{}{a:o}", if spec.alt { "0o" } else { "" }),
            };
            signed(n < 0, digits, spec)
        }
        'f' | 'F' | 'e' | 'E' | 'g' | 'G' => {
            let x = number(v)?;
            let p = spec.precision.unwrap_or(6);
            let digits = if x.is_nan() {
                "nan".into()
            } else if x.is_infinite() {
                "inf".into()
            } else {
                match conv {
                    'f' | 'F' => format!("{:.*}", p, x.abs()),
                    'e' | 'E' => exp_form(x, p, conv == 'E'),
                    _ => general(x, p, spec.alt, conv == 'G'),
                }
            };
            let digits = if conv.is_uppercase() { digits.to_uppercase() } else { digits };
            signed(x.is_sign_negative() && !x.is_nan(), digits, spec)
        }
        other => return Err(err(format!("unsupported format character {other:?}"))),
    })
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
        assert_eq!(f("%05.2f", tuple(vec![Value::from(3.14159)])), "03.14");
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
