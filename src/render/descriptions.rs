//! Descriptions as dbt's manifest has them: `{{ doc('name') }}` replaced by the docs block's
//! text, and the blocks read listed as `doc_blocks` (`doc.<package>.<name>`).
//!
//! dbt renders a description as a template whose context has `doc()`; orrery replaces the
//! `doc()` calls (one or two quoted arguments, what descriptions use) and leaves any other
//! `{{ … }}` as written.

use std::collections::HashMap;

use crate::node::{ColumnInfo, Node, SourceTable};

/// Docs blocks by name: the packages defining one, with its text, in package order.
pub(super) type DocsIndex = HashMap<String, Vec<(String, String)>>;

/// `text` with its `doc()` calls replaced and the blocks they read; `None` when it has none
/// that resolve (the text stays as it is).
pub(super) fn resolve(text: &str, package: &str, root: &str, docs: &DocsIndex) -> Option<(String, Vec<String>)> {
    if !text.contains("{{") {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open..].find("}}").map(|c| open + c) else { break };
        out.push_str(&rest[..open]);
        let inner = rest[open + 2..close].trim_matches(|c: char| c == '-' || c.is_whitespace());
        match doc_call(inner).and_then(|(pkg, name)| find(docs, pkg, name, package, root).map(|found| (name, found))) {
            Some((name, (pkg, body))) => {
                out.push_str(body);
                let id = format!("doc.{pkg}.{name}");
                if !blocks.contains(&id) {
                    blocks.push(id);
                }
            }
            None => out.push_str(&rest[open..close + 2]),
        }
        rest = &rest[close + 2..];
    }
    out.push_str(rest);
    (!blocks.is_empty()).then_some((out, blocks))
}

/// The arguments of `doc('name')` or `doc('package', 'name')`.
fn doc_call(inner: &str) -> Option<(Option<&str>, &str)> {
    fn quoted(a: &str) -> Option<&str> {
        let a = a.trim();
        let q = a.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        a.strip_prefix(q)?.strip_suffix(q).filter(|s| !s.contains(q))
    }
    let args = inner.strip_prefix("doc")?.trim_start().strip_prefix('(')?.strip_suffix(')')?;
    match args.split_once(',') {
        Some((pkg, name)) => Some((Some(quoted(pkg)?), quoted(name)?)),
        None => Some((None, quoted(args)?)),
    }
}

/// The block a call reads: in the package named, else in the node's own package, then the
/// root project, then any.
fn find<'a>(docs: &'a DocsIndex, pkg: Option<&str>, name: &str, package: &str, root: &str) -> Option<(&'a str, &'a str)> {
    let defs = docs.get(name)?;
    let by = |p: &str| defs.iter().find(|(d, _)| d == p);
    let found = match pkg {
        Some(p) => by(p),
        None => by(package).or_else(|| by(root)).or_else(|| defs.first()),
    }?;
    Some((&found.0, &found.1))
}

fn columns(columns: &mut indexmap::IndexMap<String, ColumnInfo>, package: &str, root: &str, docs: &DocsIndex) {
    for c in columns.values_mut() {
        if let Some((text, blocks)) = resolve(&c.description, package, root, docs) {
            c.description = text;
            c.doc_blocks = blocks;
        }
    }
}

/// Resolves a node's description and its columns'.
pub(super) fn resolve_node(node: &mut Node, root: &str, docs: &DocsIndex) {
    if let Some((text, blocks)) = resolve(&node.description, &node.package_name, root, docs) {
        node.description = text;
        node.doc_blocks = blocks;
    }
    columns(&mut node.columns, &node.package_name, root, docs);
}

/// Resolves a source table's description and its columns'.
pub(super) fn resolve_source(source: &mut SourceTable, root: &str, docs: &DocsIndex) {
    if let Some((text, blocks)) = resolve(&source.description, &source.package_name, root, docs) {
        source.description = text;
        source.doc_blocks = blocks;
    }
    columns(&mut source.columns, &source.package_name, root, docs);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs() -> DocsIndex {
        let mut d = DocsIndex::new();
        d.insert("id".into(), vec![("shop".into(), "The shop's id.".into()), ("utils".into(), "A util id.".into())]);
        d.insert("cents".into(), vec![("utils".into(), "Euro cents.".into())]);
        d
    }

    #[test]
    fn doc_calls_are_replaced_and_listed_once() {
        let d = docs();
        assert_eq!(
            resolve("{{ doc('id') }} and {{doc(\"cents\")}}; again {{ doc('id') }}", "shop", "shop", &d),
            Some(("The shop's id. and Euro cents.; again The shop's id.".into(), vec!["doc.shop.id".into(), "doc.utils.cents".into()]))
        );
        // Two arguments name the package; a package's own block comes before the root's.
        assert_eq!(resolve("{{ doc('utils', 'id') }}", "shop", "shop", &d).map(|r| r.0), Some("A util id.".into()));
        assert_eq!(resolve("{{ doc('id') }}", "utils", "shop", &d).map(|r| r.1), Some(vec!["doc.utils.id".into()]));
    }

    #[test]
    fn anything_else_stays_as_written() {
        let d = docs();
        assert_eq!(resolve("plain text", "shop", "shop", &d), None);
        assert_eq!(resolve("{{ doc('missing') }}", "shop", "shop", &d), None);
        assert_eq!(
            resolve("{{ var('x') }} {{ doc('id') }} {{ unclosed", "shop", "shop", &d).map(|r| r.0),
            Some("{{ var('x') }} The shop's id. {{ unclosed".into())
        );
        assert_eq!(resolve("{{ doc(id) }}", "shop", "shop", &d), None);
    }
}
