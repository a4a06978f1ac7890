//! Which lexical context each byte of a SQL text is in: code, a string literal, a quoted
//! identifier, a comment or a dollar-quoted body. Runtime variables are bound by the context
//! their placeholder stands in (`super::bind`).
//!
//! Written by hand: a parser's tokenizer (sqlparser-rs) rejects text it cannot tokenize and
//! hands back unescaped token values, where this needs byte ranges over any text, valid SQL or
//! not (an unterminated string runs to the end, as the server would read it). DuckDB's lexer is
//! PostgreSQL's, so both dialects share these rules (checked against DuckDB 1.2 and PostgreSQL):
//! `''` inside a string, `E'…'` with backslash escapes, `""` inside a quoted identifier, `--`
//! to the end of the line, nested `/* */`, and `$tag$…$tag$` bodies.

use std::ops::Range;

/// The SQL dialect of a target, by its adapter type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    DuckDb,
    Postgres,
}

impl Dialect {
    /// The dialect of an adapter type (`duckdb`, `postgres`); any other type is read with
    /// PostgreSQL's rules, which the ANSI-style warehouses share for strings and comments.
    pub fn of(adapter_type: &str) -> Self {
        if adapter_type == "duckdb" { Dialect::DuckDb } else { Dialect::Postgres }
    }
}

/// A lexical context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Context {
    Code,
    /// `'…'`; `escapes` for `E'…'`, where a backslash escapes the next character.
    String {
        escapes: bool,
    },
    /// `$tag$…$tag$`: the body, taken literally; `tag` is the whole delimiter, `$tag$`.
    Dollar {
        tag: String,
    },
    /// `"…"`.
    QuotedIdentifier,
    LineComment,
    BlockComment,
}

/// The text cut into runs of one context each, in order, covering every byte. A delimiter
/// (quote, comment marker, dollar tag) belongs to the run it opens or closes.
pub fn runs(sql: &str, dialect: Dialect) -> Vec<(Range<usize>, Context)> {
    // The two dialects lex alike (see the module's header); the parameter keeps callers honest
    // about which one they mean when they differ.
    let _ = dialect;
    let bytes = sql.as_bytes();
    let mut out: Vec<(Range<usize>, Context)> = Vec::new();
    let mut push = |range: Range<usize>, context: Context| {
        if range.is_empty() {
            return;
        }
        match out.last_mut() {
            Some((last, Context::Code)) if context == Context::Code && last.end == range.start => last.end = range.end,
            _ => out.push((range, context)),
        }
    };
    let mut i = 0;
    let mut code_start = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        let (end, context) = match b {
            b'-' if next == Some(b'-') => {
                let end = sql[i..].find('\n').map_or(sql.len(), |n| i + n);
                (end, Context::LineComment)
            }
            b'/' if next == Some(b'*') => (block_comment_end(bytes, i), Context::BlockComment),
            b'\'' => {
                let escapes = i > 0 && matches!(bytes[i - 1], b'e' | b'E') && (i < 2 || !is_ident_byte(bytes[i - 2]));
                (string_end(bytes, i, escapes), Context::String { escapes })
            }
            b'"' => (quoted_end(bytes, i), Context::QuotedIdentifier),
            b'$' if i == 0 || !is_ident_byte(bytes[i - 1]) => match dollar_tag(sql, i) {
                Some(tag) => {
                    let body = i + tag.len();
                    let end = sql[body..].find(tag.as_str()).map_or(sql.len(), |n| body + n + tag.len());
                    (end, Context::Dollar { tag })
                }
                None => {
                    i += 1;
                    continue;
                }
            },
            _ => {
                i += 1;
                continue;
            }
        };
        // An `E` prefix belongs to its string.
        let start = if matches!(context, Context::String { escapes: true }) { i - 1 } else { i };
        push(code_start..start, Context::Code);
        push(start..end, context);
        i = end;
        code_start = end;
    }
    push(code_start..sql.len(), Context::Code);
    out
}

/// The context of the byte at `offset`, from `runs`.
pub fn context_at(runs: &[(Range<usize>, Context)], offset: usize) -> &Context {
    let i = runs.partition_point(|(r, _)| r.end <= offset);
    runs.get(i).map_or(&Context::Code, |(_, c)| c)
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn block_comment_end(bytes: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

fn string_end(bytes: &[u8], open: usize, escapes: bool) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if escapes => i += 2,
            b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn quoted_end(bytes: &[u8], open: usize) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'"' if bytes.get(i + 1) == Some(&b'"') => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// `$tag$` at `at` (the tag empty, or an identifier not starting with a digit), else `None`
/// (`$1` is a parameter).
fn dollar_tag(sql: &str, at: usize) -> Option<String> {
    let rest = &sql[at + 1..];
    let len = rest.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b >= 0x80).count();
    let name = &rest[..len];
    if name.as_bytes().first().is_some_and(u8::is_ascii_digit) || rest.as_bytes().get(len) != Some(&b'$') {
        return None;
    }
    Some(format!("${name}$"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contexts(sql: &str) -> Vec<(&str, Context)> {
        runs(sql, Dialect::Postgres).into_iter().map(|(r, c)| (&sql[r], c)).collect()
    }

    #[test]
    fn quotes_comments_and_dollar_bodies_are_their_own_runs() {
        use Context::*;
        assert_eq!(
            contexts("select 'it''s', \"a\"\"b\" -- don't\nfrom t /* a /* b */ c */ where x = E'\\'' and $f$ it's $$ $f$ || $1"),
            vec![
                ("select ", Code),
                ("'it''s'", String { escapes: false }),
                (", ", Code),
                ("\"a\"\"b\"", QuotedIdentifier),
                (" ", Code),
                ("-- don't", LineComment),
                ("\nfrom t ", Code),
                ("/* a /* b */ c */", BlockComment),
                (" where x = ", Code),
                ("E'\\''", String { escapes: true }),
                (" and ", Code),
                ("$f$ it's $$ $f$", Dollar { tag: "$f$".into() }),
                (" || $1", Code),
            ]
        );
    }

    #[test]
    fn unterminated_runs_reach_the_end_and_identifiers_keep_their_dollars() {
        use Context::*;
        assert_eq!(contexts("select 'abc"), vec![("select ", Code), ("'abc", String { escapes: false })]);
        assert_eq!(contexts("/* a"), vec![("/* a", BlockComment)]);
        assert_eq!(contexts("select a$b$c, some'x'"), vec![("select a$b$c, some", Code), ("'x'", String { escapes: false })]);
        assert_eq!(contexts("$$a$$"), vec![("$$a$$", Dollar { tag: "$$".into() })]);
    }

    #[test]
    fn the_context_of_an_offset() {
        let sql = "select '__x__' -- __x__\n, __x__";
        let r = runs(sql, Dialect::DuckDb);
        let at: Vec<&Context> = sql.match_indices("__x__").map(|(i, _)| context_at(&r, i)).collect();
        assert_eq!(at, [&Context::String { escapes: false }, &Context::LineComment, &Context::Code]);
    }
}
