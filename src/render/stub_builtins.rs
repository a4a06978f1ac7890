//! TEMPORARY stand-ins for `render::builtins` (owned by helper "builtins") until it is merged.

/// dbt's built-in macros we need, as Jinja (our own minimal versions).
pub fn stub_macro_files() -> &'static [(&'static str, &'static str)] {
    &[(
        "stub.sql",
        r#"{% macro generate_schema_name(custom_schema_name, node) -%}
{{ return(default__generate_schema_name(custom_schema_name, node)) }}
{%- endmacro %}
{% macro default__generate_schema_name(custom_schema_name, node) -%}
{%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ target.schema }}_{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
{% macro generate_alias_name(custom_alias_name=none, node=none) -%}
{{ return(default__generate_alias_name(custom_alias_name, node)) }}
{%- endmacro %}
{% macro default__generate_alias_name(custom_alias_name=none, node=none) -%}
{%- if custom_alias_name -%}{{ custom_alias_name | trim }}{%- elif node.version -%}{{ node.name ~ "_v" ~ node.version }}{%- else -%}{{ node.name }}{%- endif -%}
{%- endmacro %}
{% macro generate_database_name(custom_database_name=none, node=none) -%}
{{ return(default__generate_database_name(custom_database_name, node)) }}
{%- endmacro %}
{% macro default__generate_database_name(custom_database_name=none, node=none) -%}
{%- if custom_database_name is none -%}{{ target.database }}{%- else -%}{{ custom_database_name | trim }}{%- endif -%}
{%- endmacro %}
{% test unique(model, column_name) %}
    {% set macro = adapter.dispatch('test_unique', 'dbt') %}
    {{ macro(model, column_name) }}
{% endtest %}
{% macro default__test_unique(model, column_name) %}

select
    {{ column_name }} as unique_field,
    count(*) as n_records

from {{ model }}
where {{ column_name }} is not null
group by {{ column_name }}
having count(*) > 1

{% endmacro %}
{% test not_null(model, column_name) %}
    {% set macro = adapter.dispatch('test_not_null', 'dbt') %}
    {{ macro(model, column_name) }}
{% endtest %}
{% macro default__test_not_null(model, column_name) %}

{% set column_list = '*' if should_store_failures() else column_name %}

select {{ column_list }}
from {{ model }}
where {{ column_name }} is null

{% endmacro %}
{% macro should_store_failures() %}{{ return(false) }}{% endmacro %}
{% test accepted_values(model, column_name, values, quote=True) %}
    {% set macro = adapter.dispatch('test_accepted_values', 'dbt') %}
    {{ macro(model, column_name, values, quote) }}
{% endtest %}
{% macro default__test_accepted_values(model, column_name, values, quote=True) %}

with all_values as (

    select
        {{ column_name }} as value_field,
        count(*) as n_records

    from {{ model }}
    group by {{ column_name }}

)

select *
from all_values
where value_field not in (
    {% for value in values -%}
        {% if quote -%}
        '{{ value }}'
        {%- else -%}
        {{ value }}
        {%- endif -%}
        {%- if not loop.last -%},{%- endif %}
    {%- endfor %}
)

{% endmacro %}
{% test relationships(model, column_name, to, field) %}
    {% set macro = adapter.dispatch('test_relationships', 'dbt') %}
    {{ macro(model, column_name, to, field) }}
{% endtest %}
{% macro default__test_relationships(model, column_name, to, field) %}

with child as (
    select {{ column_name }} as from_field
    from {{ model }}
    where {{ column_name }} is not null
),

parent as (
    select {{ field }} as to_field
    from {{ to }}
)

select
    from_field

from child
left join parent
    on child.from_field = parent.to_field

where parent.to_field is null

{% endmacro %}
"#,
    )]
}

/// dbt's synthesized generic test names: (short name for file and alias, full name for the id).
pub fn stub_test_names(test_type: &str, target: &str, args: &serde_json::Map<String, serde_json::Value>) -> (String, String) {
    use md5::{Digest, Md5};
    let mut keys: Vec<&String> = args.keys().filter(|k| *k != "model").collect();
    keys.sort();
    let mut flat = Vec::new();
    for k in keys {
        let parts: Vec<serde_json::Value> = match &args[k] {
            serde_json::Value::Object(m) => m.values().cloned().collect(),
            serde_json::Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        for p in parts {
            flat.push(py_str(&p));
        }
    }
    let re = regex::Regex::new("[^0-9a-zA-Z_]+").expect("regex");
    let clean: Vec<String> = flat.iter().map(|s| re.replace_all(s, "_").into_owned()).collect();
    let ident = format!("{test_type}_{target}");
    let full = format!("{ident}_{}", clean.join("__"));
    if full.len() >= 64 {
        let digest = Md5::digest(full.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let trunc: String = ident.chars().take(30).collect();
        (format!("{trunc}_{hex}"), full)
    } else {
        (full.clone(), full)
    }
}

fn py_str(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Bool(true) => "True".into(),
        serde_json::Value::Bool(false) => "False".into(),
        serde_json::Value::Null => "None".into(),
        serde_json::Value::Array(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        serde_json::Value::Object(m) => format!("{{{}}}", m.iter().map(|(k, v)| format!("'{k}': {}", py_repr(v))).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

fn py_repr(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("'{s}'"),
        other => py_str(other),
    }
}

/// Inserts ephemeral CTEs after the first `with` (or prepends a `with`).
pub fn stub_inject_ctes(sql: &str, ctes: &[(String, String)]) -> String {
    if ctes.is_empty() {
        return sql.to_string();
    }
    let joined = ctes.iter().map(|(name, body)| format!("__dbt__cte__{name} as (\n{body}\n)")).collect::<Vec<_>>().join(", ");
    let re = regex::Regex::new(r"(?i)\bwith\b").expect("regex");
    match re.find(sql) {
        Some(m) => format!("{}with  {},{}", &sql[..m.start()], joined, &sql[m.end()..]),
        None => format!("with {joined} {sql}"),
    }
}
