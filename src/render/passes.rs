//! The two passes over the drafts, as dbt's: the parse pass records each draft's
//! `ref`/`source`/`config` calls; the compile pass renders its SQL (both variants of an
//! incremental model) once relations are resolved. Each reads a simple template off its pieces
//! (`shortcuts`) instead of rendering it, unless `plain`.

use super::*;

/// Each draft's template as pieces when it is simple enough (see `static_parse`), and whether
/// it is the draft's own text (which the parse reader reads); read once for both passes.
pub(super) type Pieces<'p> = Vec<(Option<Vec<static_parse::Piece<'p>>>, bool)>;

pub(super) fn template_pieces<'p>(drafts: &[Box<Draft>], templates: &'p Templates, plain: bool) -> Pieces<'p> {
    if plain {
        return Vec::new();
    }
    drafts
        .par_iter()
        .map(|d| match d.template.as_ref().and_then(|name| templates.own.get(name)) {
            Some(text) => (static_parse::pieces(text), text.as_str() == &*d.template_text),
            None => (None, false),
        })
        .collect()
}

/// What the parse pass reads besides the drafts.
pub(super) struct ParseInputs<'a, 'e, 'p> {
    pub env: &'e Environment<'static>,
    pub base: &'a Arc<Shared>,
    pub templates: &'a Templates,
    /// Templates with syntax errors (already reported): their drafts are skipped.
    pub broken: &'a std::collections::HashSet<String>,
    pub inert_macros: &'a crate::FastSet<String>,
    pub kwarg_exprs: &'a drafts::KwargExprs<'e>,
    pub pieces: &'a Pieces<'p>,
    pub plain: bool,
}

/// The parse pass: each draft's calls, read or rendered in parallel, merged into it (config,
/// parse-time refs and sources, `enabled`). Returns which drafts go on to the compile pass: a
/// draft whose render failed does not (its error, if an error, reported in order).
// The vector itself is lent to the renders (as `LazyModel`s read their neighbours) and given back.
#[allow(clippy::vec_box)]
pub(super) fn parse_pass(inputs: &ParseInputs<'_, '_, '_>, drafts: &mut Vec<Box<Draft>>, diags: &mut Diagnostics) -> Vec<bool> {
    let parse_drafts = Arc::new(std::mem::take(drafts));
    let parsed: Vec<Result<Recorded, Diagnostic>> = parse_drafts
        .par_iter()
        .enumerate()
        .map(|(i, d)| {
            if d.template.as_ref().is_some_and(|t| inputs.broken.contains(t)) {
                return Err(Diagnostic::warning(crate::codes::render::SKIPPED, "skipped after a syntax error"));
            }
            if !inputs.plain {
                let read = inputs.pieces.get(i).filter(|(_, own)| *own).and_then(|(p, _)| p.as_deref());
                if let Some(rec) = read_parse_calls(inputs.base, inputs.inert_macros, d, read) {
                    return Ok(rec);
                }
            }
            let model = drafts::LazyModel::value_of(&parse_drafts, i, false);
            let node = new_render(inputs.base, d, Pass::Parse, None, model.clone(), None);
            if d.test.is_some() {
                // Its kwargs, then its macro, as dbt renders a generic test while parsing: a
                // `config()` in the test's macro (dbt_utils' `fail_calc`) is its config.
                let kwargs = drafts::test_kwargs(inputs.env, inputs.kwarg_exprs, &node, d, inputs.templates)?;
                let mut rec = take_recorded(&node);
                let node = new_render(inputs.base, d, Pass::Parse, None, model, Some(kwargs));
                render_draft(inputs.env, d, &node, inputs.templates)?;
                rec.absorb(take_recorded(&node));
                return Ok(rec);
            }
            render_draft(inputs.env, d, &node, inputs.templates).map(|_| take_recorded(&node))
        })
        .collect();
    // Every render of the pass is dropped by now, so this is the only owner left.
    *drafts = Arc::try_unwrap(parse_drafts).unwrap_or_else(|shared| shared.as_ref().clone());
    let outcomes: Vec<Result<(), Diagnostic>> = drafts
        .par_iter_mut()
        .zip(parsed.into_par_iter())
        .map(|(d, r)| {
            let outcome = r.map(|rec| {
                for (k, v) in rec.config {
                    context::merge_config(&mut d.config, &k, v);
                }
                d.parse_refs = rec.refs;
                d.parse_sources = rec.sources;
            });
            if d.config.get("enabled").and_then(Json::as_bool) == Some(false) {
                d.enabled = false;
            }
            outcome
        })
        .collect();
    outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Ok(()) => true,
            Err(diag) => {
                if diag.is_error() {
                    diags.push(diag);
                }
                false
            }
        })
        .collect()
}

/// The compile pass over the drafts `keep` lets through (enabled, not seeds): each one's SQL,
/// its incremental variant and what its render recorded; errors go to `diags`, and a draft
/// whose render asks the warehouse is late (`late`: its index and the call).
pub(super) fn compile_pass(
    inputs: &CompileInputs<'_, '_, '_>,
    drafts: &Arc<Vec<Box<Draft>>>,
    keep: &[bool],
    diags: &mut Diagnostics,
    late: &mut Vec<(usize, Diagnostic)>,
) -> Vec<Option<(String, Option<String>, Recorded)>> {
    let compiled: Vec<Rendered> = drafts
        .par_iter()
        .enumerate()
        .zip(keep.par_iter())
        .map(|((i, d), keep)| {
            if !keep || !d.enabled || d.resource_type == ResourceType::Seed {
                return None;
            }
            compile_draft(inputs, drafts, i, d)
        })
        .collect();
    // Converted where they lie (the vector's own iterator collects in place).
    compiled
        .into_iter()
        .enumerate()
        .map(|(i, r)| match r {
            Some(Ok(v)) => Some(v),
            Some(Err(d)) if d.message.contains(context::ASKS_THE_WAREHOUSE) => {
                late.push((i, d));
                None
            }
            Some(Err(d)) => {
                diags.push(d);
                None
            }
            None => None,
        })
        .collect()
}

/// Per draft of the compile pass: its SQL, its incremental variant and what its render recorded.
type Rendered = Option<Result<(String, Option<String>, Recorded), Diagnostic>>;

/// What the compile pass reads for every draft.
pub(super) struct CompileInputs<'a, 'e, 'p> {
    pub env: &'e Environment<'static>,
    pub shared: &'a Arc<Shared>,
    pub templates: &'a Templates,
    pub kwarg_exprs: &'a drafts::KwargExprs<'e>,
    /// Each draft's template as pieces, when it is simple enough (see `static_parse`).
    pub pieces: &'a Pieces<'p>,
    pub plain: bool,
}

/// The compile pass of draft `i`: a native test's SQL, a generic test rendered with its
/// kwargs, or a template written from its pieces or rendered (both variants of an incremental
/// model), with its hooks.
pub(super) fn compile_draft(inputs: &CompileInputs<'_, '_, '_>, all: &Arc<Vec<Box<Draft>>>, i: usize, d: &Draft) -> Rendered {
    let model = drafts::LazyModel::value_of(all, i, true);
    let kwargs = d.test.as_ref().map(|_| Value::from(()));
    let node = new_render(inputs.shared, d, Pass::Compile, Some(d.relation.clone()), model.clone(), kwargs);
    if let Some(sql) = d.test.as_ref().filter(|_| !inputs.plain).and_then(|_| native_tests::render(inputs.shared, d, &node)) {
        return Some(Ok((sql, None, take_recorded(&node))));
    }
    if d.test.is_some() {
        match drafts::test_kwargs(inputs.env, inputs.kwarg_exprs, &node, d, inputs.templates) {
            Ok(kw) => {
                // The kwargs' own ref()/source() calls (the tested model) are dependencies too.
                let from_kwargs = take_recorded(&node);
                let node2 = new_render(inputs.shared, d, Pass::Compile, Some(d.relation.clone()), model.clone(), Some(kw));
                return Some(render_draft(inputs.env, d, &node2, inputs.templates).map(|sql| {
                    let mut rec = from_kwargs;
                    rec.absorb(take_recorded(&node2));
                    (sql, None, rec)
                }));
            }
            Err(diag) => return Some(Err(diag)),
        }
    }
    // A template simple enough is written from its pieces; any other is compiled
    // (once, for both variants) and rendered.
    let pieces = inputs.pieces.get(i).and_then(|(p, _)| p.as_deref());
    let mut tmpl = None;
    let mut render = |node: &Arc<NodeRender>| -> Result<String, Diagnostic> {
        if let Some(sql) = pieces.and_then(|p| write_pieces(p, node)) {
            return Ok(sql);
        }
        let compiled = match tmpl.take() {
            Some(t) => t,
            None => draft_template(inputs.env, d, inputs.templates)?,
        };
        let sql = render_template(compiled.as_ref(), d, node, inputs.templates);
        tmpl = Some(compiled);
        sql
    };
    let sql = match render(&node) {
        Ok(s) => s,
        Err(e) => return Some(Err(e)),
    };
    let mut rec = take_recorded(&node);
    if let Err(e) = render_node_hooks(inputs.env, &node, d, &mut rec) {
        return Some(Err(e));
    }
    let incremental = if d.config.get("materialized").and_then(Json::as_str) == Some("incremental") {
        let inc = new_render(inputs.shared, d, Pass::Incremental, Some(d.relation.clone()), model, None);
        match render(&inc) {
            Ok(s) => Some(s),
            Err(e) => return Some(Err(e)),
        }
    } else {
        None
    };
    Some(Ok((sql, incremental, rec)))
}

pub(super) fn take_recorded(node: &Arc<NodeRender>) -> Recorded {
    let mut guard = node.rec.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::take(&mut *guard)
}

pub(super) fn new_render(
    shared: &Arc<Shared>,
    d: &Draft,
    pass: Pass,
    this: Option<Relation>,
    model: Value,
    test_kwargs: Option<Value>,
) -> Arc<NodeRender> {
    Arc::new(NodeRender {
        shared: shared.clone(),
        package: d.package.clone(),
        pass,
        this,
        model,
        config: d.config.clone(),
        test_kwargs,
        rec: Mutex::new(Recorded::default()),
        results: Default::default(),
    })
}

/// A draft's compiled template: a shared one from the environment, its own compiled now.
pub(super) fn draft_template<'e>(
    env: &'e Environment<'static>,
    d: &Draft,
    templates: &'e Templates,
) -> Result<Option<minijinja::Template<'e, 'e>>, Diagnostic> {
    let Some(tname) = &d.template else { return Ok(None) };
    let origin = TemplateOrigin::new(d.source.clone(), d.offset);
    let compiled = match templates.own.get_key_value(tname) {
        Some((name, text)) => env.template_from_named_str(name, text),
        None => env.get_template(tname),
    };
    compiled.map(Some).map_err(|e| templates.diagnostic(&e, Some(&origin), crate::codes::render::SYNTAX))
}

pub(super) fn render_template(
    tmpl: Option<&minijinja::Template<'_, '_>>,
    d: &Draft,
    node: &Arc<NodeRender>,
    templates: &Templates,
) -> Result<String, Diagnostic> {
    let Some(tmpl) = tmpl else { return Ok(String::new()) };
    let origin = TemplateOrigin::new(d.source.clone(), d.offset);
    let root = Value::from_object(Ctx { node: node.clone(), package: Arc::from(d.package.as_str()) });
    tmpl.render(root).map_err(|e| templates.diagnostic(&e, Some(&origin), crate::codes::render::TEMPLATE))
}

pub(super) fn render_draft(
    env: &Environment<'static>,
    d: &Draft,
    node: &Arc<NodeRender>,
    templates: &Templates,
) -> Result<String, Diagnostic> {
    let tmpl = draft_template(env, d, templates)?;
    render_template(tmpl.as_ref(), d, node, templates)
}
