//! Source rewrites that give minijinja Python's operators where they differ: `a + b` / `a - b`
//! become `__orrery_add(a, b)` / `__orrery_sub(a, b)` (date arithmetic) and `a % b` becomes
//! `__orrery_mod(a, b)` (string formatting). Only templates that mention dates or use `%` in a
//! tag are parsed for it, so other templates cost one scan. A [`SourceMap`] keeps error spans
//! at the user's own line:column.
//!
//! Lists and dicts that a template changes in place, as Python's (`{% set fields = [] %}` then
//! `{% do fields.append(x) %}`, dbt_utils' idiom), must be `python::collections`' own, since
//! minijinja's cannot change: in a template that calls `.append(`, `.extend(`, `.insert(`,
//! `.update(` or `.setdefault(`, the literals it assigns or gives as macro defaults are made as
//! those (`__orrery_list([...])`), and a name it assigns from another name is its own copy
//! when that value is minijinja's (`__orrery_own(x)`). Lists and dicts orrery hands templates
//! (config, vars, `fromjson`) already are.

use std::sync::LazyLock;

use minijinja::machinery::ast::{self, CallArg, Expr, Stmt};
use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind};

/// Maps offsets of a rewritten text back to the original: unchanged runs `(new, orig, len)`.
#[derive(Clone, Debug, Default)]
pub(crate) struct SourceMap {
    runs: Vec<(usize, usize, usize)>,
}

impl SourceMap {
    /// The original offset of `pos` in the rewritten text; inserted text maps to where it was inserted.
    pub(crate) fn original(&self, pos: usize) -> usize {
        let i = self.runs.partition_point(|r| r.0 <= pos);
        match i.checked_sub(1).map(|i| self.runs[i]) {
            Some((new, orig, len)) if pos < new + len => orig + (pos - new),
            Some((_, orig, len)) => orig + len,
            None => 0,
        }
    }

    /// The map of `prefix` inserted bytes followed by `len` bytes taken from `start` of the old text.
    pub(crate) fn slice(prefix: usize, start: usize, len: usize) -> SourceMap {
        SourceMap { runs: vec![(prefix, start, len)] }
    }

    /// `self` maps mid → orig, `next` maps new → mid; the result maps new → orig.
    pub(crate) fn then(&self, next: &SourceMap) -> SourceMap {
        let mut runs = Vec::new();
        for &(n, m, l) in &next.runs {
            let start = self.runs.partition_point(|r| r.0 + r.2 <= m);
            for &(an, ao, al) in &self.runs[start..] {
                if an >= m + l {
                    break;
                }
                let (lo, hi) = (an.max(m), (an + al).min(m + l));
                if lo < hi {
                    runs.push((n + (lo - m), ao + (lo - an), hi - lo));
                }
            }
        }
        SourceMap { runs }
    }
}

/// A replacement of `start..end` (an insertion when empty); `rank` orders insertions at one offset.
struct Edit {
    start: usize,
    end: usize,
    rank: usize,
    text: String,
}

/// Applies non-overlapping edits, returning the new text and its map to the old.
fn apply(text: &str, mut edits: Vec<Edit>) -> (String, SourceMap) {
    edits.sort_by_key(|e| (e.start, e.rank));
    let mut out = String::with_capacity(text.len() + edits.len() * 16);
    let mut runs = Vec::new();
    let mut last = 0;
    for e in edits {
        if e.start < last {
            continue;
        }
        runs.push((out.len(), last, e.start - last));
        out.push_str(&text[last..e.start]);
        out.push_str(&e.text);
        last = e.end;
    }
    runs.push((out.len(), last, text.len() - last));
    out.push_str(&text[last..]);
    runs.retain(|r| r.2 > 0);
    (out, SourceMap { runs })
}

/// `regex.replace_all` that also returns the map back to `text`.
pub(super) fn replace_all(re: &regex::Regex, text: &str, rep: impl Fn(&regex::Captures) -> String) -> (String, SourceMap) {
    let edits = re.captures_iter(text).enumerate().map(|(rank, c)| {
        let m = c.get(0).expect("group 0 always matches");
        Edit { start: m.start(), end: m.end(), rank, text: rep(&c) }
    });
    apply(text, edits.collect())
}

/// Insertions at offsets, as `(offset, text)`.
pub(super) fn insert_all(text: &str, inserts: Vec<(usize, String)>) -> (String, SourceMap) {
    apply(text, inserts.into_iter().enumerate().map(|(rank, (at, t))| Edit { start: at, end: at, rank, text: t }).collect())
}

/// Whether a template grows a list in place.
fn mutates_lists(text: &str) -> bool {
    [".append(", ".extend(", ".insert("].iter().any(|w| text.contains(w))
}

/// Whether a template changes a dict in place.
fn mutates_dicts(text: &str) -> bool {
    [".update(", ".setdefault("].iter().any(|w| text.contains(w))
}

/// Whether a template may use `+`/`-` on dates or `%` on strings, or grow a list.
fn wanted(text: &str) -> bool {
    if ["datetime", "timedelta", "run_started_at"].iter().any(|w| text.contains(w)) || mutates_lists(text) || mutates_dicts(text) {
        return true;
    }
    let mut rest = text;
    while let Some(i) = rest.find(['{']) {
        rest = &rest[i + 1..];
        let close = match rest.as_bytes().first() {
            Some(b'{') => "}}",
            Some(b'%') => "%}",
            _ => continue,
        };
        let body = &rest[1..];
        let end = body.find(close).unwrap_or(body.len());
        if body[..end].trim_matches(['-', '+', '~']).contains('%') {
            return true;
        }
        rest = &body[end..];
    }
    false
}

/// The rewritten template text and its map, or `None` when the text needs no rewrite.
pub(super) fn python_operators(text: &str) -> Option<(String, SourceMap)> {
    if !wanted(text) {
        return None;
    }
    // A syntax error is left for minijinja's own compile to report.
    let stmt = minijinja::machinery::parse(text, "<rewrite>", Default::default()).ok()?;
    let mut w = Walker { text, edits: Vec::new(), lists: mutates_lists(text), dicts: mutates_dicts(text) };
    w.stmt(&stmt);
    if w.edits.is_empty() {
        return None;
    }
    Some(apply(text, w.edits))
}

struct Walker<'t> {
    text: &'t str,
    edits: Vec<Edit>,
    /// Whether list literals assigned with `set` become growable lists.
    lists: bool,
    /// Whether dict literals assigned with `set` become changeable dicts.
    dicts: bool,
}

impl Walker<'_> {
    fn push(&mut self, start: usize, end: usize, text: &str) {
        let rank = self.edits.len();
        self.edits.push(Edit { start, end, rank, text: text.to_string() });
    }

    /// `func(` … `)` around a list or dict literal, when its span is exactly its brackets.
    fn wrap_literal(&mut self, span: minijinja::machinery::Span, open: char, close: char, func: &str) {
        let (start, end) = (span.start_offset as usize, span.end_offset as usize);
        if self.text.get(start..end).is_some_and(|t| t.starts_with(open) && t.ends_with(close)) {
            self.push(start, start, func);
            self.push(end, end, ")");
        }
    }

    fn stmts(&mut self, body: &[Stmt<'_>]) {
        for s in body {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &Stmt<'_>) {
        match s {
            Stmt::Template(t) => self.stmts(&t.children),
            Stmt::EmitExpr(e) => self.expr(&e.expr),
            Stmt::ForLoop(f) => {
                self.expr(&f.iter);
                if let Some(e) = &f.filter_expr {
                    self.expr(e);
                }
                self.stmts(&f.body);
                self.stmts(&f.else_body);
            }
            Stmt::IfCond(c) => {
                self.expr(&c.expr);
                self.stmts(&c.true_body);
                self.stmts(&c.false_body);
            }
            Stmt::WithBlock(w) => {
                for (_, e) in &w.assignments {
                    self.expr(e);
                }
                self.stmts(&w.body);
            }
            Stmt::Set(s) => {
                // (Its literals are wrapped by `expr`.)
                if let Expr::Var(v) = &s.expr
                    && (self.lists || self.dicts)
                {
                    // A name bound to a list or dict made elsewhere (a macro's argument, a
                    // test's kwargs): the template's own copy, which it can change.
                    let (start, end) = (v.span().start_offset as usize, v.span().end_offset as usize);
                    if self.text.get(start..end) == Some(v.id) {
                        self.push(start, start, "__orrery_own(");
                        self.push(end, end, ")");
                    }
                }
                self.expr(&s.expr)
            }
            Stmt::SetBlock(s) => {
                if let Some(f) = &s.filter {
                    self.expr(f);
                }
                self.stmts(&s.body);
            }
            Stmt::AutoEscape(a) => self.stmts(&a.body),
            Stmt::FilterBlock(f) => {
                self.expr(&f.filter);
                self.stmts(&f.body);
            }
            Stmt::Block(b) => self.stmts(&b.body),
            Stmt::Macro(m) => {
                self.own_changed_arguments(m, m.span());
                self.macro_decl(m)
            }
            Stmt::CallBlock(c) => {
                self.call(&c.call);
                self.macro_decl(&c.macro_decl);
            }
            Stmt::Do(d) => self.call(&d.call),
            _ => {}
        }
    }

    /// A macro's arguments that its body changes in place become its own (see `own`) when
    /// the body starts: `{% set cols = __orrery_own(cols) %}` right after the macro's tag, with
    /// the tag's own whitespace control, so the output is unchanged.
    fn own_changed_arguments(&mut self, m: &ast::Macro<'_>, span: minijinja::machinery::Span) {
        if !(self.lists || self.dicts) {
            return;
        }
        let (start, end) = (span.start_offset as usize, span.end_offset as usize);
        let Some(text) = self.text.get(start..end) else { return };
        let Some(tag_end) = text.find("%}") else { return };
        let trim = text[..tag_end].ends_with('-');
        let changed = |name: &str| {
            [".append(", ".extend(", ".insert(", ".update(", ".setdefault(", ".pop("].iter().any(|w| text.contains(&format!("{name}{w}")))
        };
        let mut sets = String::new();
        for arg in &m.args {
            if let Expr::Var(v) = arg
                && changed(v.id)
            {
                sets.push_str(&format!("{{% set {0} = __orrery_own({0}) {1}%}}", v.id, if trim { "-" } else { "" }));
            }
        }
        if !sets.is_empty() {
            self.push(start + tag_end + 2, start + tag_end + 2, &sets);
        }
    }

    fn macro_decl(&mut self, m: &ast::Macro<'_>) {
        for d in &m.defaults {
            self.expr(d);
        }
        self.stmts(&m.body);
    }

    fn call(&mut self, c: &ast::Call<'_>) {
        self.expr(&c.expr);
        self.args(&c.args);
    }

    fn args(&mut self, args: &[CallArg<'_>]) {
        for a in args {
            match a {
                CallArg::Pos(e) | CallArg::Kwarg(_, e) | CallArg::PosSplat(e) | CallArg::KwargSplat(e) => self.expr(e),
            }
        }
    }

    fn binop(&mut self, b: &ast::BinOp<'_>, span: minijinja::machinery::Span) {
        let (func, op) = match b.op {
            ast::BinOpKind::Add => ("__orrery_add(", '+'),
            ast::BinOpKind::Sub => ("__orrery_sub(", '-'),
            ast::BinOpKind::Rem => ("__orrery_mod(", '%'),
            _ => return,
        };
        // Postfix spans start late, but a left operand's span ends right: after it come only
        // closing parentheses and blanks before the operator.
        let left_end = b.left.span().end_offset as usize;
        let Some(rest) = self.text.get(left_end..) else { return };
        let Some(at) = rest.find(|c: char| !c.is_whitespace() && c != ')') else { return };
        if !rest[at..].starts_with(op) {
            return;
        }
        let gap_start = left_end;
        let (start, end) = (span.start_offset as usize, span.end_offset as usize);
        self.push(start, start, func);
        self.push(gap_start + at, gap_start + at + 1, ",");
        self.push(end, end, ")");
    }

    fn expr(&mut self, e: &Expr<'_>) {
        match e {
            Expr::Var(_) | Expr::Const(_) => {}
            Expr::Slice(s) => {
                self.expr(&s.expr);
                for x in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.expr(x);
                }
            }
            Expr::UnaryOp(u) => self.expr(&u.expr),
            Expr::BinOp(b) => {
                self.binop(b, b.span());
                self.expr(&b.left);
                self.expr(&b.right);
            }
            Expr::Compare(c) => {
                self.expr(&c.expr);
                for op in &c.ops {
                    self.expr(&op.expr);
                }
            }
            Expr::IfExpr(i) => {
                self.expr(&i.test_expr);
                self.expr(&i.true_expr);
                if let Some(f) = &i.false_expr {
                    self.expr(f);
                }
            }
            Expr::Filter(f) => {
                if let Some(x) = &f.expr {
                    self.expr(x);
                }
                self.args(&f.args);
            }
            Expr::Test(t) => {
                self.expr(&t.expr);
                self.args(&t.args);
            }
            Expr::GetAttr(g) => self.expr(&g.expr),
            Expr::GetItem(g) => {
                self.expr(&g.expr);
                self.expr(&g.subscript_expr);
            }
            Expr::Call(c) => self.call(c),
            // Every literal of a template that changes lists or dicts is one it can change.
            Expr::List(l) => {
                if self.lists {
                    self.wrap_literal(l.span(), '[', ']', "__orrery_list(");
                }
                l.items.iter().for_each(|x| self.expr(x))
            }
            Expr::Tuple(t) => t.items.iter().for_each(|x| self.expr(x)),
            Expr::Map(m) => {
                if self.dicts {
                    self.wrap_literal(m.span(), '{', '}', "__orrery_dict(");
                }
                for (k, v) in m.keys.iter().zip(&m.values) {
                    self.expr(k);
                    self.expr(v);
                }
            }
        }
    }
}

static PLAIN: LazyLock<Environment<'static>> = LazyLock::new(Environment::new);

/// minijinja's own `a <op> b`, for operands Python would treat the same way.
fn native(op: &str, a: Value, b: Value) -> Result<Value, Error> {
    let expr = PLAIN.compile_expression(op).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    // A fresh error, so minijinja puts the user's location on it rather than this expression's.
    expr.eval(minijinja::context! { a, b }).map_err(|e| Error::new(e.kind(), e.detail().unwrap_or("").to_string()))
}

pub(super) fn add(a: Value, b: Value) -> Result<Value, Error> {
    super::python::datetime::arith(&a, &b, false).unwrap_or_else(|| native("a + b", a, b))
}

pub(super) fn sub(a: Value, b: Value) -> Result<Value, Error> {
    super::python::datetime::arith(&a, &b, true).unwrap_or_else(|| native("a - b", a, b))
}

pub(super) fn rem(a: Value, b: Value) -> Result<Value, Error> {
    match a.as_str() {
        Some(fmt) => super::python::format::percent(fmt, &b).map(Value::from),
        None => native("a % b", a, b),
    }
}

/// Registers the functions the rewritten templates call.
pub(super) fn register(env: &mut Environment<'static>) {
    env.add_function("__orrery_add", add);
    env.add_function("__orrery_sub", sub);
    env.add_function("__orrery_mod", rem);
    env.add_function("__orrery_list", |items: Value| -> Result<Value, Error> {
        Ok(super::python::collections::list(items.try_iter()?.collect()))
    });
    env.add_function("__orrery_dict", |map: Value| -> Result<Value, Error> { super::python::collections::dict_of(&map) });
    env.add_function("__orrery_own", |v: Value| -> Result<Value, Error> { Ok(super::python::collections::own(v)) });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_operators_and_maps_offsets_back() {
        let src = "{% set x = (a + b) - c %}{{ '%s' % x }} {{ 5 * 2 }}";
        let (out, map) = python_operators(src).expect("rewritten");
        assert_eq!(out, "{% set x = __orrery_sub((__orrery_add(a , b)) , c) %}{{ __orrery_mod('%s' , x) }} {{ 5 * 2 }}");
        let c_new = out.find(", c)").expect("c") + 2;
        assert_eq!(map.original(c_new), src.find("c %}").expect("c"));
        assert_eq!(map.original(out.len()), src.len());
    }

    #[test]
    fn lists_grow_in_place_as_in_python() {
        let src = "{%- set fields = [] -%}{%- set seen = ['x'] -%}{%- for f in ['a', 'b'] -%}{%- do fields.append(f ~ '!') -%}{%- endfor -%}\
                   {%- do fields.extend(['c']) -%}{%- do fields.insert(0, 'z') -%}{%- do seen.append(fields.pop()) -%}\
                   {{ fields | join(' || ') }}|{{ fields | length }}|{{ fields[-1] }}|{{ seen }}|{% for s in seen %}{{ loop.index }}{% endfor %}";
        let (out, _) = python_operators(src).expect("rewritten");
        assert!(out.contains("set fields = __orrery_list([])"), "{out}");
        let mut env = Environment::new();
        register(&mut env);
        let rendered = env.render_str(&out, ()).expect("renders");
        assert_eq!(rendered, "z || a! || b!|3|b!|['x', 'c']|12");
    }

    #[test]
    fn dicts_change_in_place_as_in_python() {
        let src = "{%- set d = {'a': 1} -%}{%- do d.update({'b': 2, 'a': 3}) -%}{%- do d.setdefault('c', 4) -%}{%- set gone = d.pop('b') -%}\
                   {% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{{ d['a'] }}|{{ d.get('z', 'none') }}|{{ d | length }}|{{ gone }}|{{ 'c' in d }}";
        let (out, _) = python_operators(src).expect("rewritten");
        assert!(out.contains("set d = __orrery_dict({'a': 1})"), "{out}");
        let mut env = Environment::new();
        register(&mut env);
        assert_eq!(env.render_str(&out, ()).expect("renders"), "a=3;c=4;3|none|2|2|True");
    }

    #[test]
    fn leaves_plain_templates_alone() {
        assert!(python_operators("select {{ a + b }} from t where x like '%y%'").is_none());
    }

    #[test]
    fn composed_maps_reach_the_first_text() {
        let (mid, first) = insert_all("abcdef", vec![(2, "XX".into())]);
        let (new, second) = insert_all(&mid, vec![(0, "YYY".into())]);
        assert_eq!(new, "YYYabXXcdef");
        let both = first.then(&second);
        assert_eq!(both.original(new.find('d').expect("d")), 3);
        assert_eq!(both.original(new.find('a').expect("a")), 0);
    }
}
