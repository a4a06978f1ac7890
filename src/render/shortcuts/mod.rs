//! The shortcuts around full rendering (checked against it on every fixture project): a
//! template simple enough is read off its pieces (`static_parse`) in the parse pass and written
//! from them in the compile pass, instead of being rendered.

pub(super) mod native_tests;
pub(super) mod static_parse;

use super::*;

/// What the parse render of `d` would record, read off its text when it is simple enough.
/// `pieces`: the draft's own text already read as pieces, if it could be.
pub(super) fn read_parse_calls(
    shared: &Shared,
    inert_macros: &crate::FastSet<String>,
    d: &Draft,
    pieces: Option<&[static_parse::Piece<'_>]>,
) -> Option<Recorded> {
    d.template.as_ref()?;
    let inert = |name: &str| shared.find_macro(&d.package, name).is_some_and(|m| inert_macros.contains(&m.unique_id));
    let calls = match (&d.test, pieces) {
        (None, Some(pieces)) => static_parse::calls_of_pieces(pieces, &inert)?,
        (None, None) => static_parse::calls(&d.template_text, &inert)?,
        // A generic test's parse render evaluates its arguments only; with orrery's own
        // `get_where_subquery` and no other Jinja, only the tested model's ref or source records.
        (Some(_), _) => {
            shared.builtin_where_subquery(&d.package)?;
            let call = static_parse::single_call(drafts::plain_test_target(d)?)?;
            if !matches!(call, static_parse::Call::Ref(_) | static_parse::Call::Source(..)) {
                return None;
            }
            vec![call]
        }
    };
    let mut rec = Recorded::default();
    for call in calls {
        match call {
            // A call that would fail is left to the render, which reports it as it always has.
            static_parse::Call::Ref(call) => {
                shared.ref_target(&d.package, &call)?;
                if !rec.refs.contains(&call) {
                    rec.refs.push(call);
                }
            }
            static_parse::Call::Source(source, table) => {
                if !shared.sources.contains_key(&(source.clone(), table.clone())) {
                    return None;
                }
                let pair = [source, table];
                if !rec.sources.contains(&pair) {
                    rec.sources.push(pair);
                }
            }
            static_parse::Call::Var { name, has_default } => {
                if !has_default && !shared.vars.get(&d.package).is_some_and(|vars| vars.contains_key(&name)) {
                    return None;
                }
            }
            static_parse::Call::Config(items) => {
                for (key, value) in items {
                    context::merge_config(&mut rec.config, &key, context::json_of(&value));
                }
            }
        }
    }
    Some(rec)
}

/// What rendering a template of `pieces` (see [`static_parse::pieces`]) writes for `node`, its
/// calls recorded as the render records them; `None` (nothing recorded) when a call is not one
/// this can write: an unknown, disabled or ephemeral ref, an unset var, a var or macro result
/// other than a string or integer, a macro call no other node has rendered with these arguments.
pub(super) fn write_pieces(pieces: &[static_parse::Piece<'_>], node: &NodeRender) -> Option<String> {
    use static_parse::{Call, Piece};
    let shared = &node.shared;
    let printable = |v: &Value| {
        matches!(v.kind(), minijinja::value::ValueKind::String | minijinja::value::ValueKind::Number)
            && (v.as_str().is_some() || v.as_i64().is_some())
    };
    let mut out = String::with_capacity(pieces.iter().map(|p| if let Piece::Text(t) = p { t.len() } else { 40 }).sum());
    let mut rec = Recorded::default();
    let mut skipping = false;
    for piece in pieces {
        match piece {
            Piece::Incremental => skipping = node.pass != Pass::Incremental,
            Piece::EndIncremental => skipping = false,
            _ if skipping => {}
            Piece::Text(t) => out.push_str(t),
            Piece::This => out.push_str(&shared.relation_sql(node.this.as_ref()?)),
            Piece::Call { name, positional, keywords } => match static_parse::context_call(name, positional, keywords) {
                Some(call @ (Call::Ref(_) | Call::Source(..))) => {
                    let resolved = shared.resolve(&node.package, call)?;
                    out.push_str(&resolved.sql(shared));
                    resolved.record(&mut rec);
                }
                Some(Call::Config(items)) => {
                    for (key, value) in items {
                        context::merge_config(&mut rec.config, &key, context::json_of(&value));
                    }
                }
                Some(Call::Var { name, .. }) => {
                    let value = match shared.vars.get(&node.package).and_then(|vars| vars.get(&name)) {
                        Some(v) => context::json_value(v),
                        None => positional.get(1)?.clone(),
                    };
                    if !printable(&value) {
                        return None;
                    }
                    out.push_str(&value.to_string());
                }
                None if static_parse::is_context_name(name) => return None,
                None => {
                    let m = shared.find_macro(&node.package, name)?;
                    let mut args = positional.clone();
                    if !keywords.is_empty() {
                        args.push(Value::from(keywords.iter().cloned().collect::<minijinja::value::Kwargs>()));
                    }
                    let value = shared.memo.lookup(node, m, &args)?;
                    if !printable(&value) {
                        return None;
                    }
                    rec.add_macro(&m.unique_id);
                    out.push_str(&value.to_string());
                }
            },
        }
    }
    node.rec.lock().unwrap_or_else(|e| e.into_inner()).absorb(rec);
    Some(out)
}
