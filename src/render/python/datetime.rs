//! Python's `datetime` module as dbt's Jinja sees it (`modules.datetime`, `run_started_at`):
//! dates, datetimes and timedeltas that print, compare and add up as in Python.

use std::cmp::Ordering;
use std::fmt::{self, Write};
use std::sync::Arc;

use chrono::format::{Item, StrftimeItems};
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike};
use minijinja::value::{DynObject, Kwargs, Object, ObjectRepr, Value};
use minijinja::{Error, ErrorKind, State};

const US_PER_DAY: i128 = 86_400_000_000;
/// Python's `timedelta.max.days`.
const MAX_DELTA_DAYS: i128 = 999_999_999;

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// `datetime.date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PyDate(pub NaiveDate);

/// `datetime.datetime`; `utc` marks an aware datetime (dbt's `run_started_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PyDateTime {
    pub dt: NaiveDateTime,
    pub utc: bool,
}

/// `datetime.timedelta`, in microseconds (Python's range: ±999,999,999 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PyDelta(pub i128);

impl PyDelta {
    /// A timedelta of `us` microseconds, an error outside Python's range.
    fn new(us: i128) -> Result<PyDelta, Error> {
        let days = us.div_euclid(US_PER_DAY);
        if days.abs() > MAX_DELTA_DAYS {
            return Err(err(format!("days={days}; must have magnitude <= {MAX_DELTA_DAYS}")));
        }
        Ok(PyDelta(us))
    }

    /// `total_seconds()`: the exact quotient, rounded once (as Python divides integers).
    fn total_seconds(self) -> f64 {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        format!("{sign}{}.{:06}", a / 1_000_000, a % 1_000_000).parse().unwrap_or(0.0)
    }

    fn parts(self) -> (i128, i128, i128) {
        let days = self.0.div_euclid(US_PER_DAY);
        let rest = self.0.rem_euclid(US_PER_DAY);
        (days, rest / 1_000_000, rest % 1_000_000)
    }
}

/// Python's strftime on chrono, an error (not a panic) for a bad format.
fn strftime(dt: &NaiveDateTime, fmt: &str) -> Result<String, Error> {
    // `%Y` as the C library writes it: the year's digits, not padded to four.
    let mut own = String::with_capacity(fmt.len());
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('%', Some('Y')) => {
                chars.next();
                own.push_str(&dt.year().to_string());
            }
            // Microseconds, six digits (chrono's `%f` is nanoseconds).
            ('%', Some('f')) => {
                chars.next();
                own.push_str("%6f");
            }
            ('%', Some(next)) => {
                chars.next();
                own.push('%');
                own.push(next);
            }
            _ => own.push(c),
        }
    }
    let fmt = own.as_str();
    let items: Vec<Item> = StrftimeItems::new(fmt).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Err(err(format!("strftime: bad format {fmt:?}")));
    }
    let mut out = String::new();
    write!(out, "{}", dt.format_with_items(items.into_iter())).map_err(|_| err(format!("strftime: cannot format with {fmt:?}")))?;
    Ok(out)
}

fn iso_time(t: &NaiveDateTime, sep: &str, utc: bool) -> String {
    let mut s = format!("{}{sep}{}", t.format("%Y-%m-%d"), t.format("%H:%M:%S"));
    let us = t.nanosecond() / 1000;
    if us != 0 {
        let _ = write!(s, ".{us:06}");
    }
    if utc {
        s.push_str("+00:00");
    }
    s
}

fn kwargs(args: &[Value]) -> Option<Kwargs> {
    args.last().filter(|v| v.is_kwargs()).and_then(|v| Kwargs::try_from(v.clone()).ok())
}

/// The integer argument at position `i`, else the keyword `name`, else `default`.
fn int_arg(args: &[Value], i: usize, name: &str, default: Option<i64>) -> Result<i64, Error> {
    let given = args.iter().filter(|v| !v.is_kwargs()).nth(i).cloned();
    let given = given.or_else(|| kwargs(args).and_then(|k| k.get::<Option<Value>>(name).ok().flatten()));
    match (given, default) {
        (Some(v), _) => i64::try_from(v).map_err(|_| err(format!("{name} must be an integer"))),
        (None, Some(d)) => Ok(d),
        (None, None) => Err(err(format!("missing argument `{name}`"))),
    }
}

fn num(v: &Value) -> Result<f64, Error> {
    f64::try_from(v.clone()).map_err(|_| err(format!("expected a number, got {v}")))
}

fn make_date(y: i64, m: i64, d: i64) -> Result<NaiveDate, Error> {
    if !(1..=9999).contains(&y) {
        return Err(err(format!("year {y} is out of range")));
    }
    i32::try_from(y)
        .ok()
        .and_then(|y| NaiveDate::from_ymd_opt(y, u32::try_from(m).ok()?, u32::try_from(d).ok()?))
        .ok_or_else(|| err(format!("date({y}, {m}, {d}) is out of range")))
}

fn make_time(h: i64, mi: i64, s: i64, us: i64) -> Result<NaiveTime, Error> {
    let c = |v: i64| u32::try_from(v).ok();
    c(h).zip(c(mi))
        .zip(c(s))
        .zip(c(us))
        .and_then(|(((h, mi), s), us)| NaiveTime::from_hms_micro_opt(h, mi, s, us))
        .ok_or_else(|| err(format!("time({h}, {mi}, {s}, {us}) is out of range")))
}

fn now_local() -> NaiveDateTime {
    chrono::Local::now().naive_local()
}

fn parse_iso(s: &str) -> Result<NaiveDateTime, Error> {
    let s = s.trim();
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(dt);
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_time(NaiveTime::MIN))
        .map_err(|_| err(format!("invalid isoformat string: {s:?}")))
}

/// A date in Python's years, 1 to 9999.
fn in_range<T: Datelike>(value: Option<T>) -> Result<T, Error> {
    value.filter(|v| (1..=9999).contains(&v.year())).ok_or_else(|| err("date value out of range"))
}

fn add_us(dt: NaiveDateTime, us: i128) -> Result<NaiveDateTime, Error> {
    let delta = i64::try_from(us).ok().map(TimeDelta::microseconds);
    in_range(delta.and_then(|d| dt.checked_add_signed(d)))
}

/// `a + b` / `a - b` when an operand is a date, datetime or timedelta; `None` otherwise.
pub(crate) fn arith(a: &Value, b: &Value, subtract: bool) -> Option<Result<Value, Error>> {
    let (da, db) = (a.downcast_object_ref::<PyDate>(), b.downcast_object_ref::<PyDate>());
    let (ta, tb) = (a.downcast_object_ref::<PyDateTime>(), b.downcast_object_ref::<PyDateTime>());
    let (xa, xb) = (a.downcast_object_ref::<PyDelta>(), b.downcast_object_ref::<PyDelta>());
    if da.is_none() && db.is_none() && ta.is_none() && tb.is_none() && xa.is_none() && xb.is_none() {
        return None;
    }
    let sign = if subtract { -1 } else { 1 };
    let date_plus = |d: &PyDate, x: &PyDelta, sign: i128| {
        let days = i64::try_from(x.parts().0 * sign).ok().and_then(TimeDelta::try_days);
        in_range(days.and_then(|days| d.0.checked_add_signed(days))).map(|d| Value::from_object(PyDate(d)))
    };
    let dt_plus =
        |t: &PyDateTime, x: &PyDelta, sign: i128| add_us(t.dt, x.0 * sign).map(|dt| Value::from_object(PyDateTime { dt, utc: t.utc }));
    Some(match (da, ta, xa, db, tb, xb) {
        (Some(d), _, _, _, _, Some(x)) => date_plus(d, x, sign),
        (_, _, Some(x), Some(d), _, _) if !subtract => date_plus(d, x, 1),
        (_, Some(t), _, _, _, Some(x)) => dt_plus(t, x, sign),
        (_, _, Some(x), _, Some(t), _) if !subtract => dt_plus(t, x, 1),
        (_, _, Some(x), _, _, Some(y)) => PyDelta::new(x.0 + y.0 * sign).map(Value::from_object),
        (Some(d), _, _, Some(e), _, _) if subtract => Ok(Value::from_object(PyDelta(i128::from((d.0 - e.0).num_days()) * US_PER_DAY))),
        (_, Some(t), _, _, Some(u), _) if subtract => {
            if t.utc != u.utc {
                Err(err("can't subtract offset-naive and offset-aware datetimes"))
            } else {
                (t.dt - u.dt)
                    .num_microseconds()
                    .map(|us| Value::from_object(PyDelta(i128::from(us))))
                    .ok_or_else(|| err("timedelta out of range"))
            }
        }
        _ => Err(err(format!("unsupported operand types for {}: {} and {}", if subtract { "-" } else { "+" }, type_name(a), type_name(b)))),
    })
}

fn type_name(v: &Value) -> String {
    if v.downcast_object_ref::<PyDate>().is_some() {
        "datetime.date".into()
    } else if v.downcast_object_ref::<PyDateTime>().is_some() {
        "datetime.datetime".into()
    } else if v.downcast_object_ref::<PyDelta>().is_some() {
        "datetime.timedelta".into()
    } else {
        v.kind().to_string()
    }
}

fn weekday(d: NaiveDate) -> Value {
    Value::from(d.weekday().num_days_from_monday())
}

fn replaced_date(d: NaiveDate, args: &[Value]) -> Result<NaiveDate, Error> {
    make_date(
        int_arg(args, 0, "year", Some(d.year().into()))?,
        int_arg(args, 1, "month", Some(d.month().into()))?,
        int_arg(args, 2, "day", Some(d.day().into()))?,
    )
}

impl Object for PyDate {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "year" => Value::from(self.0.year()),
            "month" => Value::from(self.0.month()),
            "day" => Value::from(self.0.day()),
            _ => return None,
        })
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        let d = self.0;
        match method {
            "isoformat" => Ok(Value::from(d.format("%Y-%m-%d").to_string())),
            "strftime" => strftime(&d.and_time(NaiveTime::MIN), args.first().and_then(Value::as_str).unwrap_or_default()).map(Value::from),
            "weekday" => Ok(weekday(d)),
            "isoweekday" => Ok(Value::from(d.weekday().number_from_monday())),
            "replace" => Ok(Value::from_object(PyDate(replaced_date(d, args)?))),
            "toordinal" => Ok(Value::from(d.num_days_from_ce())),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        Some(self.0.cmp(&other.downcast_ref::<Self>()?.0))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl Object for PyDateTime {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let t = &self.dt;
        Some(match key.as_str()? {
            "year" => Value::from(t.year()),
            "month" => Value::from(t.month()),
            "day" => Value::from(t.day()),
            "hour" => Value::from(t.hour()),
            "minute" => Value::from(t.minute()),
            "second" => Value::from(t.second()),
            "microsecond" => Value::from(t.nanosecond() / 1000),
            "tzinfo" => {
                if self.utc {
                    Value::from("UTC")
                } else {
                    Value::from(())
                }
            }
            _ => return None,
        })
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        let t = self.dt;
        match method {
            "isoformat" => Ok(Value::from(iso_time(&t, args.first().and_then(Value::as_str).unwrap_or("T"), self.utc))),
            "strftime" => strftime(&t, args.first().and_then(Value::as_str).unwrap_or_default()).map(Value::from),
            "date" => Ok(Value::from_object(PyDate(t.date()))),
            "weekday" => Ok(weekday(t.date())),
            "isoweekday" => Ok(Value::from(t.weekday().number_from_monday())),
            "timestamp" => Ok(Value::from(t.and_utc().timestamp_micros() as f64 / 1e6)),
            "replace" => {
                let date = replaced_date(t.date(), args)?;
                let time = make_time(
                    int_arg(args, 3, "hour", Some(t.hour().into()))?,
                    int_arg(args, 4, "minute", Some(t.minute().into()))?,
                    int_arg(args, 5, "second", Some(t.second().into()))?,
                    int_arg(args, 6, "microsecond", Some((t.nanosecond() / 1000).into()))?,
                )?;
                Ok(Value::from_object(PyDateTime { dt: date.and_time(time), utc: self.utc }))
            }
            "astimezone" => Ok(Value::from_object(PyDateTime { dt: t, utc: true })),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        Some(self.dt.cmp(&other.downcast_ref::<Self>()?.dt))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&iso_time(&self.dt, " ", self.utc))
    }
}

impl Object for PyDelta {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let (days, seconds, micros) = self.parts();
        Some(match key.as_str()? {
            "days" => Value::from(days),
            "seconds" => Value::from(seconds),
            "microseconds" => Value::from(micros),
            _ => return None,
        })
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, _args: &[Value]) -> Result<Value, Error> {
        match method {
            "total_seconds" => Ok(Value::from(self.total_seconds())),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        Some(self.0.cmp(&other.downcast_ref::<Self>()?.0))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (days, seconds, micros) = self.parts();
        if days != 0 {
            write!(f, "{days} day{}, ", if days.abs() == 1 { "" } else { "s" })?;
        }
        write!(f, "{}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60)?;
        if micros != 0 {
            write!(f, ".{micros:06}")?;
        }
        Ok(())
    }
}

/// The classes of the module: callable constructors with class methods.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Class {
    DateTime,
    Date,
    Delta,
    Time,
}

#[derive(Debug)]
struct PyClass(Class);

/// `datetime.time`, only as an argument of `datetime.combine`.
#[derive(Debug)]
struct PyTime(NaiveTime);

impl Object for PyTime {
    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%H:%M:%S"))
    }
}

/// `timedelta(...)`: integer amounts summed exactly; a float amount split into its exact whole
/// microseconds and a fraction, the fractions rounded half to even once at the end (Python's
/// result, without the precision a sum of floats loses past 2^53 microseconds).
fn delta_from(args: &[Value]) -> Result<PyDelta, Error> {
    const UNITS: [(&str, i128); 7] = [
        ("days", 86_400_000_000),
        ("seconds", 1_000_000),
        ("microseconds", 1),
        ("milliseconds", 1_000),
        ("minutes", 60_000_000),
        ("hours", 3_600_000_000),
        ("weeks", 604_800_000_000),
    ];
    let mut whole: i128 = 0;
    let mut fraction = 0f64;
    let mut add = |v: &Value, unit: i128| -> Result<(), Error> {
        let (w, f) = if v.is_integer() || v.kind() == minijinja::value::ValueKind::Bool {
            let n = i128::try_from(v.clone()).map_err(|_| err("timedelta out of range"))?;
            (n.checked_mul(unit).ok_or_else(|| err("timedelta out of range"))?, 0.0)
        } else {
            float_times(num(v)?, unit)?
        };
        whole = whole.checked_add(w).ok_or_else(|| err("timedelta out of range"))?;
        fraction += f;
        Ok(())
    };
    for (i, v) in args.iter().filter(|v| !v.is_kwargs()).enumerate() {
        let unit = UNITS.get(i).ok_or_else(|| err("timedelta() takes at most 7 arguments"))?;
        add(v, unit.1)?;
    }
    if let Some(kw) = kwargs(args) {
        for key in kw.args() {
            let unit =
                UNITS.iter().find(|(n, _)| *n == key).ok_or_else(|| err(format!("timedelta() got an unexpected keyword `{key}`")))?;
            add(&kw.get::<Value>(key)?, unit.1)?;
        }
    }
    let rounded = fraction.round_ties_even();
    PyDelta::new(whole + rounded as i128)
}

/// `x * unit` for a float `x`, exactly: its whole part and the fraction left (|fraction| < 1).
fn float_times(x: f64, unit: i128) -> Result<(i128, f64), Error> {
    if !x.is_finite() || x.abs() > 1e18 {
        return Err(err("timedelta out of range"));
    }
    if x == 0.0 {
        return Ok((0, 0.0));
    }
    // x = mantissa * 2^exp exactly.
    let bits = x.to_bits();
    let raw_exp = ((bits >> 52) & 0x7ff) as i32;
    let mantissa = if raw_exp == 0 { (bits & 0xf_ffff_ffff_ffff) << 1 } else { (bits & 0xf_ffff_ffff_ffff) | 0x10_0000_0000_0000 };
    let exp = raw_exp - 1075;
    let product = i128::from(mantissa) * unit * if x < 0.0 { -1 } else { 1 };
    if exp >= 0 {
        return Ok((product.checked_shl(exp as u32).filter(|p| p >> exp == product).ok_or_else(|| err("timedelta out of range"))?, 0.0));
    }
    let shift = (-exp) as u32;
    if shift >= 120 {
        return Ok((0, product as f64 * 2f64.powi(exp)));
    }
    let whole = product >> shift;
    let rest = product - (whole << shift);
    Ok((whole, rest as f64 * 2f64.powi(exp)))
}

fn str_arg(args: &[Value], i: usize) -> Result<&str, Error> {
    args.get(i).and_then(Value::as_str).ok_or_else(|| err("expected a string argument"))
}

impl Object for PyClass {
    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        match self.0 {
            Class::Date => Ok(Value::from_object(PyDate(make_date(
                int_arg(args, 0, "year", None)?,
                int_arg(args, 1, "month", None)?,
                int_arg(args, 2, "day", None)?,
            )?))),
            Class::DateTime => {
                let date = make_date(int_arg(args, 0, "year", None)?, int_arg(args, 1, "month", None)?, int_arg(args, 2, "day", None)?)?;
                let time = make_time(
                    int_arg(args, 3, "hour", Some(0))?,
                    int_arg(args, 4, "minute", Some(0))?,
                    int_arg(args, 5, "second", Some(0))?,
                    int_arg(args, 6, "microsecond", Some(0))?,
                )?;
                let utc = kwargs(args).is_some_and(|k| k.get::<Option<Value>>("tzinfo").ok().flatten().is_some_and(|v| !v.is_none()));
                Ok(Value::from_object(PyDateTime { dt: date.and_time(time), utc }))
            }
            Class::Delta => Ok(Value::from_object(delta_from(args)?)),
            Class::Time => Ok(Value::from_object(PyTime(make_time(
                int_arg(args, 0, "hour", Some(0))?,
                int_arg(args, 1, "minute", Some(0))?,
                int_arg(args, 2, "second", Some(0))?,
                int_arg(args, 3, "microsecond", Some(0))?,
            )?))),
        }
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        let dt = |dt: NaiveDateTime, utc: bool| Ok(Value::from_object(PyDateTime { dt, utc }));
        match (self.0, method) {
            (Class::DateTime, "now") if args.first().is_some_and(|v| !v.is_none()) => dt(chrono::Utc::now().naive_utc(), true),
            (Class::DateTime, "now" | "today") => dt(now_local(), false),
            (Class::DateTime, "utcnow") => dt(chrono::Utc::now().naive_utc(), false),
            (Class::DateTime, "strptime") => {
                let (s, fmt) = (str_arg(args, 0)?, str_arg(args, 1)?);
                let parsed = NaiveDateTime::parse_from_str(s, fmt)
                    .or_else(|_| NaiveDate::parse_from_str(s, fmt).map(|d| d.and_time(NaiveTime::MIN)))
                    .map_err(|e| err(format!("time data {s:?} does not match format {fmt:?} ({e})")))?;
                dt(parsed, false)
            }
            (Class::DateTime, "fromisoformat") => dt(parse_iso(str_arg(args, 0)?)?, false),
            (Class::DateTime, "combine") => {
                let d = args.first().and_then(|v| v.downcast_object_ref::<PyDate>()).ok_or_else(|| err("combine() needs a date"))?;
                let t = args.get(1).and_then(|v| v.downcast_object_ref::<PyTime>()).map_or(NaiveTime::MIN, |t| t.0);
                dt(d.0.and_time(t), false)
            }
            (Class::DateTime | Class::Date, "fromtimestamp") => {
                let ts = num(args.first().ok_or_else(|| err("fromtimestamp() needs a timestamp"))?)?;
                let t =
                    chrono::DateTime::from_timestamp_micros((ts * 1e6) as i64).ok_or_else(|| err("timestamp out of range"))?.naive_utc();
                if self.0 == Class::Date { Ok(Value::from_object(PyDate(t.date()))) } else { dt(t, false) }
            }
            (Class::Date, "today") => Ok(Value::from_object(PyDate(now_local().date()))),
            (Class::Date, "fromisoformat") => Ok(Value::from_object(PyDate(parse_iso(str_arg(args, 0)?)?.date()))),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// `modules.datetime`.
#[derive(Debug)]
pub(crate) struct DateTimeModule;

impl Object for DateTimeModule {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "datetime" => Value::from_object(PyClass(Class::DateTime)),
            "date" => Value::from_object(PyClass(Class::Date)),
            "timedelta" => Value::from_object(PyClass(Class::Delta)),
            "time" => Value::from_object(PyClass(Class::Time)),
            "timezone" => minijinja::context! { utc => "UTC" },
            "MINYEAR" => Value::from(1),
            "MAXYEAR" => Value::from(9999),
            _ => return None,
        })
    }
}

/// `run_started_at`: an aware UTC datetime.
pub(crate) fn utc_datetime(t: chrono::DateTime<chrono::Utc>) -> Value {
    Value::from_object(PyDateTime { dt: t.naive_utc(), utc: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str) -> String {
        let mut env = minijinja::Environment::new();
        env.add_global("dt", Value::from_object(DateTimeModule));
        env.add_function("add", |a: Value, b: Value| arith(&a, &b, false).unwrap_or_else(|| Err(err("not ours"))));
        env.add_function("sub", |a: Value, b: Value| arith(&a, &b, true).unwrap_or_else(|| Err(err("not ours"))));
        env.render_str(src, ()).unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn prints_and_adds_like_python() {
        let src = "{% set d = dt.date(2024, 2, 28) %}{% set t = dt.datetime(2024, 2, 28, 23, 30) %}\
            {% set td = dt.timedelta(days=1, hours=2, seconds=3.5) %}\
            {{ add(d, dt.timedelta(days=2)) }}|{{ add(t, td) }}|{{ sub(t, td) }}|{{ sub(t, dt.datetime(2024,1,1)) }}|\
            {{ sub(t, dt.datetime(2024,1,1)).total_seconds() }}|{{ sub(td, add(td, td)) }}|{{ dt.timedelta(microseconds=5) }}|\
            {{ sub(d, dt.date(2024, 1, 1)).days }}|{{ d < dt.date(2025, 1, 1) }}|{{ t.replace(hour=1, minute=0) }}|\
            {{ dt.datetime(2024,1,1,1,2,3,4).isoformat() }}|{{ dt.datetime.strptime('2024-03-01', '%Y-%m-%d').date() }}";
        assert_eq!(
            render(src),
            "2024-03-01|2024-03-01 01:30:03.500000|2024-02-27 21:29:56.500000|58 days, 23:30:00|5095800.0|\
             -2 days, 21:59:56.500000|0:00:00.000005|58|True|2024-02-28 01:00:00|2024-01-01T01:02:03.000004|2024-03-01"
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(render("{{ dt.date(2024, 13, 1) }}").starts_with("error"));
        assert!(render("{{ dt.datetime(2024, 1, 1).strftime('%Q%') }}").starts_with("error"));
        assert!(render("{{ sub(dt.date(2024, 1, 1), dt.datetime(2024, 1, 1)) }}").starts_with("error"));
    }
}
