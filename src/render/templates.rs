//! Templates: where each came from (for file:line:col through the rewrites), the text
//! minijinja compiles, and the environment's loader that hands them over on first use.

use super::*;

/// The environment every template renders in, and the loader's waiting sources. Templates are
/// compiled on first use (orrery's builtin macros, which a project mostly never calls) or all
/// at once in parallel (the drafts'): minijinja asks this loader for them. A builtin may be
/// loaded by two threads at once (minijinja loads outside its lock), so its source stays; a
/// draft's is loaded once, before rendering, and is handed over.
pub(super) fn environment(options: &RenderOptions) -> (Environment<'static>, Arc<Mutex<HashMap<String, LazySource>>>) {
    let mut env = env::new_environment(options.run_started_at, &options.invocation_id, options.full_refresh);
    let lazy: Arc<Mutex<HashMap<String, LazySource>>> = Arc::default();
    env.set_auto_reload(false);
    env.set_loader({
        let lazy = lazy.clone();
        move |name| {
            let mut sources = lazy.lock().unwrap_or_else(|e| e.into_inner());
            Ok(match sources.get(name) {
                Some(LazySource::Shared(text)) => Some(text.clone()),
                Some(LazySource::Once(_)) => match sources.remove(name) {
                    Some(LazySource::Once(text)) => Some(text),
                    _ => None,
                },
                None => None,
            })
        }
    });
    (env, lazy)
}

/// Where a template's text came from, to turn minijinja errors into file:line:col.
#[derive(Clone)]
pub(crate) struct TemplateOrigin {
    pub source: SourceFile,
    /// Byte offset of the template text in the file (snapshot bodies).
    pub offset: usize,
    /// Where the template text was rewritten before minijinja saw it: back to the file's text.
    pub map: Option<Arc<rewrite::SourceMap>>,
}

impl TemplateOrigin {
    pub(crate) fn new(source: SourceFile, offset: usize) -> Self {
        TemplateOrigin { source, offset, map: None }
    }

    /// A byte range of the template minijinja compiled, as a range of the file.
    fn file_range(&self, r: std::ops::Range<usize>) -> std::ops::Range<usize> {
        match &self.map {
            Some(m) => self.offset + m.original(r.start)..self.offset + m.original(r.end).max(m.original(r.start)),
            None => self.offset + r.start..self.offset + r.end,
        }
    }
}

/// The text minijinja compiles for a template, and its map back when it differs.
pub(crate) fn prepared(text: &str) -> (String, Option<Arc<rewrite::SourceMap>>) {
    let calls = env::call_blocks(text);
    let (text, calls_map) = match &calls {
        Some((t, m)) => (t.as_str(), Some(m)),
        None => (text, None),
    };
    match (rewrite::python_operators(text), calls_map) {
        (Some((t, m)), Some(c)) => (t, Some(Arc::new(c.then(&m)))),
        (Some((t, m)), None) => (t, Some(Arc::new(m))),
        (None, Some(c)) => (text.to_string(), Some(Arc::new(c.clone()))),
        (None, None) => (text.to_string(), None),
    }
}

/// A template's source waiting in the loader.
pub(super) enum LazySource {
    /// Loaded whenever asked (builtin macros: any thread may ask first).
    Shared(String),
    /// Loaded once, then the compiled template is all that is kept (drafts).
    Once(String),
}

/// Registers the drafts' templates and reports the syntax errors of those many drafts share
/// (generic tests'; the first draft of a name wins). They are prepared and compiled in
/// parallel: minijinja compiles a loader's template outside its lock, and each source is handed
/// over once, so nothing is held twice. A template of its own draft is only prepared (see
/// `Templates::own`): its syntax errors come from its first render.
pub(super) fn register_draft_templates(
    env: &Environment<'static>,
    lazy: &std::sync::Mutex<HashMap<String, LazySource>>,
    templates: &mut Templates,
    drafts: &[Box<drafts::Draft>],
    diags: &mut Diagnostics,
) -> std::collections::HashSet<String> {
    let mut seen = std::collections::HashSet::new();
    let pending: Vec<(&String, &drafts::Draft)> = drafts
        .iter()
        .filter_map(|d| d.template.as_ref().map(|t| (t, &**d)))
        .filter(|(t, _)| !templates.origins.contains_key(*t) && seen.insert(t.as_str()))
        .collect();
    let prepared_all: Vec<(String, String, TemplateOrigin, bool)> = pending
        .par_iter()
        .map(|(name, d)| {
            let (text, map) = prepared(&d.template_text);
            ((*name).clone(), text, TemplateOrigin { source: d.source.clone(), offset: d.offset, map }, d.test.is_some())
        })
        .collect();
    let mut names = Vec::new();
    {
        let mut sources = lazy.lock().unwrap_or_else(|e| e.into_inner());
        for (name, text, origin, shared) in prepared_all {
            templates.origins.insert(name.clone(), origin);
            if shared {
                sources.insert(name.clone(), LazySource::Once(text));
                names.push(name);
            } else {
                templates.own.insert(name, text);
            }
        }
    }
    let errors: Vec<Option<minijinja::Error>> = names.par_iter().map(|name| env.get_template(name).err()).collect();
    let mut broken = std::collections::HashSet::new();
    for (name, err) in names.into_iter().zip(errors) {
        if let Some(err) = err {
            diags.push(templates.diagnostic(&err, templates.origins.get(&name), crate::codes::render::SYNTAX));
            broken.insert(name);
        }
    }
    broken
}

#[derive(Default)]
pub(crate) struct Templates {
    pub origins: crate::FastMap<String, TemplateOrigin>,
    /// The prepared text of each template only one draft renders (a model's, snapshot's,
    /// analysis' or singular test's): compiled for each render and dropped after it, not kept
    /// in the environment, since minijinja keeps room for 256 instructions in every compiled
    /// template (about 12 KB each, over 100 MB at 10,000 models).
    pub own: crate::FastMap<String, String>,
}

impl Templates {
    /// A minijinja error as a diagnostic at the innermost template location known.
    pub(crate) fn diagnostic(&self, err: &minijinja::Error, fallback: Option<&TemplateOrigin>, code: &str) -> Diagnostic {
        let mut message = err.detail().map(str::to_string).unwrap_or_else(|| err.kind().to_string());
        let mut located: Option<(&minijinja::Error, &TemplateOrigin)> = None;
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = cur {
            if let Some(me) = e.downcast_ref::<minijinja::Error>() {
                if let Some(detail) = me.detail() {
                    message = detail.to_string();
                }
                if let Some(origin) = me.name().and_then(|n| self.origins.get(n))
                    && me.line().is_some()
                {
                    located = Some((me, origin));
                }
            }
            cur = e.source();
        }
        let diag = Diagnostic::error(code, message);
        match located {
            Some((me, origin)) => match me.range() {
                Some(r) => diag.at(&origin.source, origin.file_range(r)),
                None => {
                    let (base_line, _) = origin.source.line_col(origin.offset);
                    let line = base_line + me.line().unwrap_or(1) - 1;
                    let start = origin.source.offset_of(line, 1);
                    let end = origin.source.text[start..].find('\n').map_or(origin.source.text.len(), |i| start + i);
                    diag.at(&origin.source, start..end)
                }
            },
            None => match fallback {
                Some(o) => diag.with_file(o.source.path.as_ref().clone()),
                None => diag,
            },
        }
    }
}
