//! Ephemeral models inlined as dbt inlines them: each becomes ` __dbt__cte__<identifier> as (…)`
//! in front of the model's SQL, after the model's own top-level `WITH` when it has one.
//!
//! dbt finds that `WITH` with sqlparse; this scanner reproduces the parts of sqlparse that
//! decide the output: only the first statement is kept, the first top-level `with` word (not
//! inside parentheses, strings, quoted names or comments) is the anchor, `recursive` right after
//! it moves the anchor, and the CTEs go before the next non-whitespace token.

/// An ephemeral model as the CTE collection needs it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ephemeral<'a> {
    /// The relation identifier (alias) the CTE is named after.
    pub identifier: &'a str,
    /// Its compiled SQL before its own CTEs were injected.
    pub sql: &'a str,
    /// unique_ids of the ephemeral models it refs, in first-use order.
    pub ctes: &'a [String],
}

/// The CTEs a node needs, as `(identifier, sql)` in dbt's order: each ephemeral after the
/// ephemerals it refs, each once. `direct` are the ephemeral unique_ids the node refs, in
/// first-use order; `lookup` finds an ephemeral by unique_id.
pub(crate) fn collect_ctes<'a>(direct: &[String], lookup: &dyn Fn(&str) -> Option<Ephemeral<'a>>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    collect_into(direct, lookup, &mut out, &mut stack);
    out.into_iter().map(|(_, identifier, sql)| (identifier, sql)).collect()
}

fn collect_into<'a>(
    direct: &[String],
    lookup: &dyn Fn(&str) -> Option<Ephemeral<'a>>,
    out: &mut Vec<(String, String, String)>,
    stack: &mut Vec<String>,
) {
    for id in direct {
        // A cycle of ephemerals is reported by the graph stage; here it must only terminate.
        if stack.contains(id) {
            continue;
        }
        let Some(eph) = lookup(id) else { continue };
        stack.push(id.clone());
        collect_into(eph.ctes, lookup, out, stack);
        stack.pop();
        if !out.iter().any(|(seen, _, _)| seen == id) {
            out.push((id.clone(), eph.identifier.to_string(), eph.sql.to_string()));
        }
    }
}

/// Injects `ctes` (`(identifier, sql)`, see [`collect_ctes`]) into `sql` as dbt does.
pub(crate) fn inject_ctes(sql: &str, ctes: &[(String, String)]) -> String {
    if ctes.is_empty() {
        return sql.to_string();
    }
    let joined = ctes.iter().map(|(identifier, body)| format!(" __dbt__cte__{identifier} as (\n{body}\n)")).collect::<Vec<_>>().join(", ");
    let stmt = first_statement(sql);
    let tokens = top_level_tokens(stmt);
    let next_solid = |from: usize| tokens[from..].iter().find(|t| t.kind != Kind::Space).map_or(stmt.len(), |t| t.start);
    match with_anchor(stmt, &tokens) {
        Some(i) => {
            let at = next_solid(i + 1);
            format!("{}{joined}, {}", &stmt[..at], &stmt[at..])
        }
        None => {
            let at = next_solid(0);
            format!("{}with{joined} {}", &stmt[..at], &stmt[at..])
        }
    }
}

/// The index of the token after which the CTEs go: `with`, or `recursive` right after it.
fn with_anchor(stmt: &str, tokens: &[Token]) -> Option<usize> {
    let mut anchor = None;
    for (i, t) in tokens.iter().enumerate() {
        let word = &stmt[t.start..t.end];
        if t.kind == Kind::Word && word.eq_ignore_ascii_case("with") {
            anchor = Some(i);
        } else if anchor.is_some() && t.kind == Kind::Word && word.eq_ignore_ascii_case("recursive") {
            return Some(i);
        } else if anchor.is_some() && t.kind != Kind::Space {
            break;
        }
    }
    anchor
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Spaces, tabs and line breaks.
    Space,
    Word,
    /// Everything else: comments, strings, quoted names, parenthesised groups, punctuation.
    Other,
}

#[derive(Clone, Copy, Debug)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

/// The text up to the first `;` outside strings and comments, plus the spaces and `--`
/// comments that follow it on the same line (sqlparse's statement split).
fn first_statement(sql: &str) -> &str {
    let mut lexer = Lexer { sql, pos: 0 };
    while let Some((piece, _, end)) = lexer.next_piece() {
        if piece == Piece::Semicolon {
            let mut stop = end;
            let mut after = Lexer { sql, pos: end };
            while let Some((p, _, e)) = after.next_piece() {
                match p {
                    Piece::InlineSpace | Piece::LineComment => stop = e,
                    _ => break,
                }
            }
            return &sql[..stop];
        }
    }
    sql
}

/// Tokens at parenthesis depth 0; a parenthesised group is one `Other` token.
fn top_level_tokens(stmt: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut lexer = Lexer { sql: stmt, pos: 0 };
    let mut depth = 0usize;
    let mut group_start = 0;
    while let Some((piece, start, end)) = lexer.next_piece() {
        match piece {
            Piece::Open => {
                if depth == 0 {
                    group_start = start;
                }
                depth += 1;
            }
            Piece::Close if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    tokens.push(Token { kind: Kind::Other, start: group_start, end });
                }
            }
            _ if depth > 0 => {}
            Piece::InlineSpace | Piece::Newline => tokens.push(Token { kind: Kind::Space, start, end }),
            Piece::Word => tokens.push(Token { kind: Kind::Word, start, end }),
            _ => tokens.push(Token { kind: Kind::Other, start, end }),
        }
    }
    if depth > 0 {
        // An unclosed group runs to the end, as sqlparse leaves it ungrouped but opaque here.
        tokens.push(Token { kind: Kind::Other, start: group_start, end: stmt.len() });
    }
    tokens
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Piece {
    InlineSpace,
    Newline,
    LineComment,
    BlockComment,
    Quoted,
    Word,
    Open,
    Close,
    Semicolon,
    Other,
}

/// sqlparse's lexer, as far as it matters for finding `with` and `;`.
struct Lexer<'a> {
    sql: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    fn next_piece(&mut self) -> Option<(Piece, usize, usize)> {
        let rest = &self.sql[self.pos..];
        let c = rest.chars().next()?;
        let start = self.pos;
        let prev = self.sql[..start].chars().next_back();
        let (piece, len) = if rest.starts_with("\r\n") {
            (Piece::Newline, 2)
        } else if c == '\n' || c == '\r' {
            (Piece::Newline, 1)
        } else if c.is_whitespace() {
            (Piece::InlineSpace, c.len_utf8())
        } else if rest.starts_with("--") || rest.starts_with("# ") {
            let len = rest.find(['\n', '\r']).map_or(rest.len(), |i| i + if rest[i..].starts_with("\r\n") { 2 } else { 1 });
            (Piece::LineComment, len)
        } else if let Some(len) = rest.strip_prefix("/*").and_then(|r| r.find("*/")).map(|i| i + 4) {
            (Piece::BlockComment, len)
        } else if c == '\'' || c == '"' || c == '`' {
            match quoted_len(rest, c) {
                Some(len) => (Piece::Quoted, len),
                None => (Piece::Other, 1),
            }
        } else if c == '$' && !prev.is_some_and(|p| p.is_alphanumeric() || p == '_' || p == '"' || p == '$') {
            match dollar_quoted_len(rest) {
                Some(len) => (Piece::Quoted, len),
                None => (Piece::Other, 1),
            }
        } else if c.is_alphanumeric() || c == '_' {
            let len = rest.find(|ch: char| !(ch.is_alphanumeric() || ch == '_' || ch == '$' || ch == '#')).unwrap_or(rest.len());
            // A name after a dot (`t.with`) is never a keyword.
            let kind = if prev == Some('.') { Piece::Other } else { Piece::Word };
            (kind, len)
        } else {
            let kind = match c {
                '(' => Piece::Open,
                ')' => Piece::Close,
                ';' => Piece::Semicolon,
                _ => Piece::Other,
            };
            (kind, c.len_utf8())
        };
        self.pos += len;
        Some((piece, start, self.pos))
    }
}

/// Length of a quoted string or name; the quote doubled or backslash-escaped stays inside.
fn quoted_len(rest: &str, quote: char) -> Option<usize> {
    let mut chars = rest.char_indices().skip(1).peekable();
    while let Some((i, ch)) = chars.next() {
        if ch == '\\' && quote != '`' {
            chars.next();
        } else if ch == quote {
            if chars.peek().is_some_and(|(_, n)| *n == quote) {
                chars.next();
            } else {
                return Some(i + ch.len_utf8());
            }
        }
    }
    None
}

/// Length of a `$tag$ … $tag$` string.
fn dollar_quoted_len(rest: &str) -> Option<usize> {
    let tag_end = rest[1..].find(|ch: char| !(ch.is_alphanumeric() || ch == '_'))? + 1;
    if !rest[tag_end..].starts_with('$') || rest[1..].starts_with(|ch: char| ch.is_ascii_digit()) {
        return None;
    }
    let tag = &rest[..=tag_end];
    rest[tag.len()..].find(tag).map(|i| tag.len() + i + tag.len())
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use serde_json::Value as Json;

    use super::*;
    use crate::render::builtins::fixtures;

    #[test]
    fn injection_matches_dbt_on_edge_cases() {
        // Made by cte_cases.py, which runs dbt's own injection.
        let cases: Vec<Json> = serde_json::from_str(&fixtures::read("expected/cte_injection.json")).expect("json");
        let mut failures = Vec::new();
        for case in &cases {
            let sql = case["sql"].as_str().expect("sql");
            let ctes: Vec<(String, String)> = serde_json::from_value(case["ctes"].clone()).expect("ctes");
            let got = inject_ctes(sql, &ctes);
            if got != case["expected"].as_str().expect("expected") {
                failures.push(format!("{sql:?}\n  ours {got:?}\n  dbt  {:?}", case["expected"]));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        assert!(cases.len() > 30);
    }

    /// Renders a fixture model's raw code with `ref` only, noting the ephemerals it refs.
    fn render(manifest: &Json, raw: &str) -> (String, Vec<String>) {
        let used = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let mut env = minijinja::Environment::new();
        let nodes = manifest["nodes"].clone();
        let seen = used.clone();
        env.add_function("ref", move |name: String| {
            let (id, node) = nodes
                .as_object()
                .and_then(|m| m.iter().find(|(_, n)| n["name"] == name.as_str() && n["resource_type"] != "test"))
                .expect("ref resolves");
            if node["config"]["materialized"] == "ephemeral" {
                let mut seen = seen.lock().expect("lock");
                if !seen.contains(id) {
                    seen.push(id.clone());
                }
                format!("__dbt__cte__{}", node["alias"].as_str().unwrap_or_default())
            } else {
                node["relation_name"].as_str().unwrap_or_default().to_string()
            }
        });
        env.add_function("config", |_: minijinja::value::Kwargs| String::new());
        let out = env.render_str(raw, ()).expect("renders");
        let used = used.lock().expect("lock").clone();
        (out, used)
    }

    #[test]
    fn models_using_ephemerals_compile_as_dbt_does() {
        let manifest: Json = serde_json::from_str(&fixtures::read("expected/manifest.json")).expect("json");
        let nodes = manifest["nodes"].as_object().expect("nodes");
        let rendered: RefCell<HashMap<String, (String, Vec<String>)>> = RefCell::new(HashMap::new());
        for (id, node) in nodes {
            if node["resource_type"] == "model" {
                rendered.borrow_mut().insert(id.clone(), render(&manifest, node["raw_code"].as_str().expect("raw")));
            }
        }
        let rendered = rendered.into_inner();
        let lookup = |id: &str| {
            rendered.get(id).map(|(sql, ctes)| Ephemeral {
                identifier: nodes[id]["alias"].as_str().unwrap_or_default(),
                sql: sql.as_str(),
                ctes: ctes.as_slice(),
            })
        };
        let mut checked = 0;
        for (id, (sql, direct)) in &rendered {
            if direct.is_empty() {
                continue;
            }
            let got = inject_ctes(sql, &collect_ctes(direct, &lookup));
            let path = nodes[id]["compiled_path"].as_str().expect("path").trim_start_matches("target/");
            assert_eq!(got, fixtures::read(&format!("expected/{path}")), "{id}");
            checked += 1;
        }
        // orders, customer_events, customer_totals and the nested stg_payments.
        assert_eq!(checked, 4);
    }
}
