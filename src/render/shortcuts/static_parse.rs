//! The parse pass without rendering, for templates simple enough to read as they are (and the
//! same reading of a template as [`pieces`], which the compile pass writes without rendering).
//!
//! dbt renders every model twice: once to learn its `ref`, `source` and `config` calls (with
//! `execute` false), once to compile it. When a template is made only of such calls, `var`
//! calls and calls of macros that cannot record anything — each with literal arguments — and
//! of `{% if is_incremental() %}` blocks (not rendered while parsing: nothing exists yet), what
//! the first render would record can be read off the text. Anything else, or anything this
//! reader is unsure of, returns `None` and the template is rendered as before; the compile pass
//! renders every template anyway, so an error the parse render would have raised is still
//! reported, by it.

use minijinja::value::Value;

use crate::node::RefCall;

/// A call the parse render would record.
#[derive(Debug, PartialEq)]
pub(crate) enum Call {
    /// `ref(...)`: its package (with two names), name and `v=` / `version=`.
    Ref(RefCall),
    /// `source(source_name, table_name)`.
    Source(String, String),
    /// `config(key=value, ...)`, in call order.
    Config(Vec<(String, Value)>),
    /// `var(name)` (records nothing, fails when the var is unset) or `var(name, default)`.
    Var { name: String, has_default: bool },
}

/// Names a model template may not call through this reader (they are context functions or
/// values whose parse-time effects it does not reproduce).
const CONTEXT_NAMES: &[&str] = &[
    "get_where_subquery",
    "doc",
    "execute",
    "this",
    "model",
    "target",
    "graph",
    "project_name",
    "adapter",
    "context",
    "_dbt_generic_test_kwargs",
    "is_incremental",
    "env_var",
    "log",
    "print",
    "return",
    "exceptions",
    "run_query",
    "statement",
    "load_result",
    "caller",
    "modules",
    "fromjson",
    "tojson",
    "fromyaml",
    "toyaml",
    "zip",
    "set",
    "local_md5",
    "invocation_id",
    "run_started_at",
];

/// Identifiers that make a macro body unsafe to skip while parsing: they record, print, depend
/// on the pass (`execute`, `model`, `this`, `graph`) or reach other templates.
const RECORDING_NAMES: &[&str] = &[
    "ref",
    "source",
    "config",
    "adapter",
    "execute",
    "graph",
    "model",
    "this",
    "env_var",
    "run_query",
    "statement",
    "load_result",
    "caller",
    "exceptions",
    "log",
    "print",
    "do",
    "call",
    "import",
    "from",
    "include",
    "extends",
    "context",
    "doc",
    "get_where_subquery",
    "is_incremental",
    "raw",
    "builtins",
];

#[derive(Debug, Clone, PartialEq)]
enum Tok<'a> {
    Ident(&'a str),
    Str(&'a str),
    Int(i64),
    Punct(u8),
}

#[derive(Clone, Copy, PartialEq)]
enum Tag {
    Expr,
    Stmt,
}

/// One `{{ }}` or `{% %}` of a template, as tokens.
struct TagToks<'a> {
    kind: Tag,
    toks: Vec<Tok<'a>>,
}

/// A template's text between tags (with the tags' `-` whitespace control applied, as
/// minijinja's lexer applies it) or one of its tags; comments are dropped.
enum Segment<'a> {
    Text(&'a str),
    Tag(TagToks<'a>),
}

/// `text` as segments; `None` on what this reader does not lex (a `+` marker, an unclosed tag
/// or comment, a token it does not know).
fn segments(text: &str) -> Option<Vec<Segment<'_>>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut text_start, mut trim_next) = (0, 0, false);
    loop {
        let Some(at) = (i..b.len().saturating_sub(1)).find(|&k| b[k] == b'{' && matches!(b[k + 1], b'{' | b'%' | b'#')) else {
            let lead = &text[text_start..];
            let lead = if trim_next { lead.trim_start() } else { lead };
            if !lead.is_empty() {
                out.push(Segment::Text(lead));
            }
            return Some(out);
        };
        let opener = b[at + 1];
        let mut lead = &text[text_start..at];
        if trim_next {
            lead = lead.trim_start();
        }
        let mut j = at + 2;
        match b.get(j) {
            Some(b'-') => {
                lead = lead.trim_end();
                j += 1;
            }
            // `+` (keep the whitespace `lstrip_blocks` would strip) is not read; on a comment
            // it changes nothing here.
            Some(b'+') if opener != b'#' => return None,
            _ => {}
        }
        if !lead.is_empty() {
            out.push(Segment::Text(lead));
        }
        if opener == b'#' {
            let end = j + text[j..].find("#}")?;
            trim_next = end > j && b[end - 1] == b'-';
            i = end + 2;
        } else {
            let close = if opener == b'{' { b'}' } else { b'%' };
            let (toks, next) = lex(text, j, close)?;
            trim_next = b[next - 3] == b'-';
            out.push(Segment::Tag(TagToks { kind: if opener == b'{' { Tag::Expr } else { Tag::Stmt }, toks }));
            i = next;
        }
        text_start = i;
    }
}

/// Every tag of `text`, comments skipped; `None` on what this reader does not lex.
fn tags(text: &str) -> Option<Vec<TagToks<'_>>> {
    let tags = segments(text)?.into_iter().filter_map(|s| match s {
        Segment::Tag(t) => Some(t),
        Segment::Text(_) => None,
    });
    Some(tags.collect())
}

/// Tokens from `at` up to the tag's end (`}}` or `%}`, with an optional `-` before it); returns
/// them and the offset after the end.
fn lex(text: &str, mut i: usize, close: u8) -> Option<(Vec<Tok<'_>>, usize)> {
    let b = text.as_bytes();
    let mut toks = Vec::new();
    loop {
        let c = *b.get(i)?;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'-' if b.get(i + 1) == Some(&close) && b.get(i + 2) == Some(&b'}') => return Some((toks, i + 3)),
            _ if c == close && b.get(i + 1) == Some(&b'}') => return Some((toks, i + 2)),
            b'\'' | b'"' => {
                let rest = &text[i + 1..];
                let end = rest.find(c as char)?;
                let s = &rest[..end];
                if s.contains('\\') {
                    return None;
                }
                toks.push(Tok::Str(s));
                i += end + 2;
            }
            b'0'..=b'9' => {
                let start = i;
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                // A float, `1e3`, `1_000` or `007` is left to minijinja.
                if b.get(i).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'_') || (b[start] == b'0' && i - start > 1) {
                    return None;
                }
                toks.push(Tok::Int(text[start..i].parse().ok()?));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while b.get(i).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
                    i += 1;
                }
                toks.push(Tok::Ident(&text[start..i]));
            }
            b'(' | b')' | b'[' | b']' | b'{' | b'}' | b',' | b'=' | b':' | b'.' | b'-' | b'|' | b'~' | b'+' | b'*' | b'/' | b'%' | b'<'
            | b'>' | b'!' => {
                toks.push(Tok::Punct(c));
                i += 1;
            }
            _ => return None,
        }
    }
}

/// Whether a macro's text (one `{% macro %}` block) can be skipped while parsing: it names
/// nothing in [`RECORDING_NAMES`] and no macro or package but itself (`is_macro`).
pub(in crate::render) fn macro_is_inert(text: &str, is_macro: &dyn Fn(&str) -> bool) -> bool {
    let Some(tags) = tags(text) else { return false };
    let mut own_name = None;
    for tag in &tags {
        for (i, tok) in tag.toks.iter().enumerate() {
            let Tok::Ident(id) = tok else { continue };
            if tag.kind == Tag::Stmt && i == 1 && tag.toks.first() == Some(&Tok::Ident("macro")) {
                own_name = Some(*id);
                continue;
            }
            if RECORDING_NAMES.contains(id) || (Some(*id) != own_name && is_macro(id)) {
                return false;
            }
        }
    }
    own_name.is_some()
}

/// Identifiers that make an inert macro's output depend on more than its arguments and the
/// caller's package: the clock and randomness, the whole context (`debug`), a test's kwargs.
const IMPURE_NAMES: &[&str] = &["modules", "debug", "lipsum", "random", "shuffle", "_dbt_generic_test_kwargs"];

/// Whether an inert macro (see [`macro_is_inert`]) gives the same result for the same
/// arguments from every node of a package, so that one call's result can stand for the others.
pub(in crate::render) fn macro_is_pure(text: &str, is_macro: &dyn Fn(&str) -> bool) -> bool {
    macro_is_inert(text, is_macro)
        && tags(text)
            .is_some_and(|tags| tags.iter().flat_map(|t| &t.toks).all(|tok| !matches!(tok, Tok::Ident(id) if IMPURE_NAMES.contains(id))))
}

/// The calls a parse render of `text` would record, or `None` when the template is not simple
/// enough (see the module's documentation). `inert_macro` tells whether a name is a macro the
/// template may call without rendering it.
pub(in crate::render) fn calls(text: &str, inert_macro: &dyn Fn(&str) -> bool) -> Option<Vec<Call>> {
    let tags = tags(text)?;
    let mut out = Vec::new();
    let mut skipping = 0usize;
    for tag in &tags {
        match tag.kind {
            Tag::Stmt => {
                let toks = tag.toks.as_slice();
                let first = match toks.first() {
                    Some(Tok::Ident(id)) => *id,
                    _ => return None,
                };
                let is_incremental_if =
                    toks == [Tok::Ident("if"), Tok::Ident("is_incremental"), Tok::Punct(b'('), Tok::Punct(b')')].as_slice();
                match first {
                    "raw" => return None,
                    "if" if skipping == 0 && is_incremental_if => skipping = 1,
                    "if" if skipping > 0 => skipping += 1,
                    "endif" if skipping > 0 => skipping -= 1,
                    // An `else` of the skipped block is rendered while parsing.
                    "else" | "elif" if skipping == 1 => return None,
                    _ if skipping > 0 => {}
                    _ => return None,
                }
            }
            Tag::Expr if skipping > 0 => {}
            Tag::Expr => out.extend(expression(&tag.toks, inert_macro)?),
        }
    }
    (skipping == 0).then_some(out)
}

/// A call's literal arguments: positional ones, then `key=value` ones.
type Arguments = (Vec<Value>, Vec<(String, Value)>);

/// A `{{ name(args) }}` expression with literal arguments: the name and the arguments.
fn call_parts<'a>(toks: &[Tok<'a>]) -> Option<(&'a str, Arguments)> {
    let [Tok::Ident(name), Tok::Punct(b'('), rest @ ..] = toks else { return None };
    let mut p = Parser { toks: rest, at: 0 };
    let arguments = p.arguments()?;
    (p.at == rest.len()).then_some((*name, arguments))
}

/// A `{{ name(args) }}` expression: what it records (`None` inside when it records nothing).
fn expression(toks: &[Tok<'_>], inert_macro: &dyn Fn(&str) -> bool) -> Option<Option<Call>> {
    let (name, (positional, keywords)) = call_parts(toks)?;
    match context_call(name, &positional, &keywords) {
        Some(call) => Some(Some(call)),
        None if is_context_name(name) => None,
        None if inert_macro(name) => Some(None),
        None => None,
    }
}

/// A call of `ref`, `source`, `config` or `var` with arguments this reader understands.
pub(in crate::render) fn context_call(name: &str, positional: &[Value], keywords: &[(String, Value)]) -> Option<Call> {
    match name {
        "ref" => {
            let mut names = positional.iter().map(|v| v.as_str().map(str::to_string)).collect::<Option<Vec<_>>>()?;
            if !(1..=2).contains(&names.len()) {
                return None;
            }
            let mut version = None;
            for (key, value) in keywords {
                match key.as_str() {
                    "v" | "version" if value.is_none() => {}
                    "v" | "version" if value.as_str().is_some() || value.as_i64().is_some() => version = Some(value.to_string()),
                    _ => return None,
                }
            }
            let name = names.pop()?;
            Some(Call::Ref(RefCall { package: names.pop(), name, version }))
        }
        "source" => match (positional, keywords.is_empty()) {
            ([s, t], true) => Some(Call::Source(s.as_str()?.to_string(), t.as_str()?.to_string())),
            _ => None,
        },
        "config" if positional.is_empty() => Some(Call::Config(keywords.to_vec())),
        "var" if keywords.is_empty() && (1..=2).contains(&positional.len()) => {
            Some(Call::Var { name: positional[0].as_str()?.to_string(), has_default: positional.len() == 2 })
        }
        _ => None,
    }
}

/// The one call of a Jinja expression's text, e.g. `ref('m')` (`None` for anything else).
pub(in crate::render) fn single_call(expr: &str) -> Option<Call> {
    let mut calls = calls(&format!("{{{{ {expr} }}}}"), &|_| false)?;
    if calls.len() == 1 { calls.pop() } else { None }
}

/// [`calls`] of a template already read as [`pieces`] (the same answer, without reading it again).
pub(in crate::render) fn calls_of_pieces(pieces: &[Piece<'_>], inert_macro: &dyn Fn(&str) -> bool) -> Option<Vec<Call>> {
    let mut out = Vec::new();
    let mut skipping = false;
    for piece in pieces {
        match piece {
            Piece::Incremental => skipping = true,
            Piece::EndIncremental => skipping = false,
            _ if skipping => {}
            Piece::Text(_) => {}
            // `this` is the context's: such a template is rendered.
            Piece::This => return None,
            Piece::Call { name, positional, keywords } => match context_call(name, positional, keywords) {
                Some(call) => out.push(call),
                None if is_context_name(name) => return None,
                None if inert_macro(name) => {}
                None => return None,
            },
        }
    }
    Some(out)
}

/// Whether `name` is one of the context's own names (not a macro a template may call).
pub(in crate::render) fn is_context_name(name: &str) -> bool {
    CONTEXT_NAMES.contains(&name) || matches!(name, "ref" | "source" | "config" | "var")
}

/// A piece of a template as its render writes it (see [`pieces`]).
#[derive(Debug, PartialEq)]
pub(in crate::render) enum Piece<'a> {
    /// Text, with the tags' whitespace control applied.
    Text(&'a str),
    /// `{{ name(args) }}` with literal arguments.
    Call {
        name: &'a str,
        positional: Vec<Value>,
        keywords: Vec<(String, Value)>,
    },
    /// `{{ this }}`.
    This,
    /// `{% if is_incremental() %}`: what follows, up to [`Piece::EndIncremental`], is written
    /// in the incremental variant only.
    Incremental,
    EndIncremental,
}

/// A template made only of text, comments, `{{ call(literals) }}`, `{{ this }}` and
/// `{% if is_incremental() %}` blocks (not nested, no `else`), as the pieces minijinja would
/// write: one trailing newline dropped, `-` whitespace control applied. `None` for anything else.
pub(in crate::render) fn pieces(text: &str) -> Option<Vec<Piece<'_>>> {
    // minijinja drops one trailing newline (`\n`, then `\r`) of a template.
    let mut text = text.strip_suffix('\n').unwrap_or(text);
    text = text.strip_suffix('\r').unwrap_or(text);
    // A piece per segment at most: room for exactly that many (a template's pieces are kept
    // until its node is compiled, for every template at once).
    let segments = segments(text)?;
    let mut out = Vec::with_capacity(segments.len());
    let mut incremental = false;
    for segment in segments {
        let TagToks { kind, toks } = match segment {
            Segment::Text(t) => {
                out.push(Piece::Text(t));
                continue;
            }
            Segment::Tag(tag) => tag,
        };
        if kind == Tag::Expr {
            if toks == [Tok::Ident("this")] {
                out.push(Piece::This);
            } else {
                let (name, (positional, keywords)) = call_parts(&toks)?;
                out.push(Piece::Call { name, positional, keywords });
            }
        } else if !incremental && toks == [Tok::Ident("if"), Tok::Ident("is_incremental"), Tok::Punct(b'('), Tok::Punct(b')')] {
            incremental = true;
            out.push(Piece::Incremental);
        } else if incremental && toks == [Tok::Ident("endif")] {
            incremental = false;
            out.push(Piece::EndIncremental);
        } else {
            return None;
        }
    }
    (!incremental).then_some(out)
}

struct Parser<'t, 'a> {
    toks: &'t [Tok<'a>],
    at: usize,
}

impl<'t, 'a> Parser<'t, 'a> {
    fn peek(&self) -> Option<&'t Tok<'a>> {
        self.toks.get(self.at)
    }

    fn eat(&mut self, punct: u8) -> bool {
        if self.peek() == Some(&Tok::Punct(punct)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// Arguments up to and including the closing `)`: positional literals, then `key=literal`s.
    fn arguments(&mut self) -> Option<Arguments> {
        let mut positional = Vec::new();
        let mut keywords: Vec<(String, Value)> = Vec::new();
        // Kept as long as the pieces: no room left over from growing (a first push makes room
        // for four).
        let done = |mut positional: Vec<Value>, mut keywords: Vec<(String, Value)>| {
            positional.shrink_to_fit();
            keywords.shrink_to_fit();
            (positional, keywords)
        };
        loop {
            if self.eat(b')') {
                return Some(done(positional, keywords));
            }
            if let (Some(Tok::Ident(key)), Some(Tok::Punct(b'='))) = (self.toks.get(self.at), self.toks.get(self.at + 1)) {
                let key = key.to_string();
                self.at += 2;
                let value = self.literal()?;
                if keywords.iter().any(|(k, _)| *k == key) {
                    return None;
                }
                keywords.push((key, value));
            } else {
                if !keywords.is_empty() {
                    return None;
                }
                positional.push(self.literal()?);
            }
            if !self.eat(b',') {
                return self.eat(b')').then(|| done(positional, keywords));
            }
        }
    }

    /// A string, integer, boolean, none, or a list or string-keyed dict of literals.
    fn literal(&mut self) -> Option<Value> {
        let tok = self.peek()?.clone();
        self.at += 1;
        Some(match tok {
            Tok::Str(s) => Value::from(s),
            Tok::Int(n) => Value::from(n),
            Tok::Punct(b'-') => match self.peek()? {
                Tok::Int(n) => {
                    let n = -*n;
                    self.at += 1;
                    Value::from(n)
                }
                _ => return None,
            },
            Tok::Ident("true" | "True") => Value::from(true),
            Tok::Ident("false" | "False") => Value::from(false),
            Tok::Ident("none" | "None") => Value::from(()),
            Tok::Punct(b'[') => {
                let mut items = Vec::new();
                while !self.eat(b']') {
                    items.push(self.literal()?);
                    if !self.eat(b',') {
                        if !self.eat(b']') {
                            return None;
                        }
                        break;
                    }
                }
                Value::from(items)
            }
            Tok::Punct(b'{') => {
                let mut items: Vec<(String, Value)> = Vec::new();
                while !self.eat(b'}') {
                    let Some(Tok::Str(key)) = self.peek().cloned() else { return None };
                    self.at += 1;
                    if !self.eat(b':') {
                        return None;
                    }
                    let value = self.literal()?;
                    if items.iter().any(|(k, _)| k == key) {
                        return None;
                    }
                    items.push((key.to_string(), value));
                    if !self.eat(b',') {
                        if !self.eat(b'}') {
                            return None;
                        }
                        break;
                    }
                }
                Value::from_iter(items)
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_apply_whitespace_control_as_minijinja_does() {
        let text = "{{ config(materialized='table') }}\n\nselect {{- ref('a') -}}  ,\n  {# note -#}\n x {#- gone #}\n{% if is_incremental() %}\nwhere t > (select max(t) from {{ this }})\n{% endif %}\n";
        let got = pieces(text).expect("simple");
        let call = |name, positional: Vec<Value>, keywords: Vec<(String, Value)>| Piece::Call { name, positional, keywords };
        assert_eq!(
            got,
            vec![
                call("config", vec![], vec![("materialized".into(), Value::from("table"))]),
                Piece::Text("\n\nselect"),
                call("ref", vec![Value::from("a")], vec![]),
                Piece::Text(",\n  "),
                Piece::Text("x"),
                Piece::Text("\n"),
                Piece::Incremental,
                Piece::Text("\nwhere t > (select max(t) from "),
                Piece::This,
                Piece::Text(")\n"),
                Piece::EndIncremental,
            ]
        );
        // What minijinja writes, with stand-ins for the calls, in both variants.
        for incremental in [false, true] {
            let mut env = minijinja::Environment::new();
            env.add_function("ref", |_: Value| "REF");
            env.add_function("config", |_: minijinja::value::Kwargs| "");
            env.add_function("is_incremental", move || incremental);
            env.add_global("this", "THIS");
            let rendered = env.render_str(text, ()).expect("renders");
            let mut written = String::new();
            let mut skipping = false;
            for piece in &got {
                match piece {
                    Piece::Incremental => skipping = !incremental,
                    Piece::EndIncremental => skipping = false,
                    _ if skipping => {}
                    Piece::Text(t) => written.push_str(t),
                    Piece::This => written.push_str("THIS"),
                    Piece::Call { name, .. } => written.push_str(if *name == "ref" { "REF" } else { "" }),
                }
            }
            assert_eq!(written, rendered);
        }
        // Anything else is rendered.
        for text in [
            "{% if x %}a{% endif %}",
            "{{ a ~ b }}",
            "{% if is_incremental() %}a{% else %}b{% endif %}",
            "{{+ ref('a') }}",
            "{% raw %}x{% endraw %}",
            "{{ ref(x) }}",
        ] {
            assert!(pieces(text).is_none(), "{text}");
        }
    }

    #[test]
    fn a_pure_macro_depends_on_its_arguments_only() {
        let none = |_: &str| false;
        assert!(macro_is_pure("{% macro cents(c, d=2) -%} round({{ c }} / 100.0, {{ d }}) {%- endmacro %}", &none));
        assert!(macro_is_pure("{% macro v() %}{{ var('x', 1) ~ target.name }}{% endmacro %}", &none));
        // Inert, but the clock, randomness or the whole context make calls differ.
        for body in ["{{ modules.datetime.datetime.now() }}", "{{ [1, 2] | random }}", "{{ debug() }}"] {
            let text = format!("{{% macro m() %}}{body}{{% endmacro %}}");
            assert!(macro_is_inert(&text, &none), "{body}");
            assert!(!macro_is_pure(&text, &none), "{body}");
        }
        assert!(!macro_is_pure("{% macro m() %}{{ this }}{% endmacro %}", &none));
    }

    fn read(text: &str) -> Option<Vec<Call>> {
        calls(text, &|name| name == "scaled")
    }

    #[test]
    fn reads_refs_sources_configs_and_skips_incremental_blocks() {
        let text = "{{ config(materialized='incremental', unique_key='id', tags=['a', \"b\"], meta={'x': 1}) }}\n\
            select * from {{ ref('a') }} join {{ ref('pkg', 'b', v=2) }} join {{ source('raw', 't') }}\n\
            where {{ scaled('x', factor=-2) }} > {{ var('min', 0) }}\n\
            {%- if is_incremental() %} and id > (select max(id) from {{ this }}){% if x %}{% endif %}{% endif -%}\n\
            {# {{ ref('commented') }} #}";
        let got = read(text).expect("simple enough");
        assert_eq!(got.len(), 5);
        match &got[0] {
            Call::Config(kv) => {
                let keys: Vec<&str> = kv.iter().map(|(k, _)| k.as_str()).collect();
                assert_eq!(keys, ["materialized", "unique_key", "tags", "meta"]);
                assert_eq!(kv[2].1.to_string(), "['a', 'b']");
            }
            other => panic!("expected config, got {other:?}"),
        }
        assert_eq!(got[1], Call::Ref(RefCall { package: None, name: "a".into(), version: None }));
        assert_eq!(got[2], Call::Ref(RefCall { package: Some("pkg".into()), name: "b".into(), version: Some("2".into()) }));
        assert_eq!(got[3], Call::Source("raw".into(), "t".into()));
        assert_eq!(got[4], Call::Var { name: "min".into(), has_default: true });
    }

    #[test]
    fn anything_else_is_rendered() {
        for text in [
            "{{ ref('a') | upper }}",
            "{{ ref('a').identifier }}",
            "{{ this }}",
            "{% set x = 1 %}{{ ref('a') }}",
            "{% if is_incremental() %}{% else %}{{ ref('a') }}{% endif %}",
            "{% if is_incremental() %}",
            "{{ other_macro('x') }}",
            "{{ config(materialized=var('m')) }}",
            "{{ ref('a\\'b') }}",
            "{{ ref(name) }}",
            "{% raw %}{{ ref('a') }}{% endraw %}",
            "{{ env_var('X') }}",
            "{{ ref('a') ~ 'x' }}",
            "{{ ref('a', v=1.5) }}",
            "{{ config(limit=007) }}",
            "{{ dbt_utils.star(ref('a')) }}",
            "{{ config(**{'a': 1}) }}",
            "{%+ if is_incremental() %}{% endif %}",
            "{% macro m() %}{% endmacro %}{{ ref('a') }}",
            "{{ ref('ä') }}{{ café }}",
        ] {
            assert_eq!(read(text), None, "{text}");
        }
        assert_eq!(read("select 1"), Some(vec![]));
    }

    #[test]
    fn a_macro_is_inert_unless_it_can_record_or_reach_another_macro() {
        let is_macro = |name: &str| matches!(name, "orrery_macro__scaled" | "other" | "dbt_utils");
        assert!(macro_is_inert(
            "{% macro orrery_macro__scaled(column, factor=1) -%}({{ column }} * {{ factor }}){%- endmacro %}",
            &is_macro
        ));
        assert!(macro_is_inert(
            "{% macro orrery_macro__label() %}{{ return(\"'\" ~ var('label', 'none') ~ \"'\") }}{% endmacro %}",
            &is_macro
        ));
        for text in [
            "{% macro orrery_macro__m() %}{{ ref('a') }}{% endmacro %}",
            "{% macro orrery_macro__m() %}{{ other() }}{% endmacro %}",
            "{% macro orrery_macro__m() %}{{ dbt_utils.star('x') }}{% endmacro %}",
            "{% macro orrery_macro__m() %}{% if execute %}x{% endif %}{% endmacro %}",
            "{% macro orrery_macro__m() %}{{ log('x') }}{% endmacro %}",
            "{% macro orrery_macro__m() %}{{ builtins.ref('a') }}{% endmacro %}",
        ] {
            assert!(!macro_is_inert(text, &is_macro), "{text}");
        }
    }
}
