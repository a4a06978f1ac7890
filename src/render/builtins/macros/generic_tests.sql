{#- The four generic tests dbt ships. Each wrapper dispatches so a project's
    `default__test_*` or `<adapter>__test_*` wins; the blank and indented lines are the
    whitespace dbt's compiled tests carry, kept so the output is byte-identical. -#}
{% macro test_unique(model, column_name) %}
    {% set impl = adapter.dispatch('test_unique', 'dbt') %}
    {{ impl(model, column_name) }}
{% endmacro %}

{% macro default__test_unique(model, column_name) %}

select
    {{ column_name }} as unique_field,
    count(*) as n_records

from {{ model }}
where {{ column_name }} is not null
group by {{ column_name }}
having count(*) > 1

{% endmacro %}

{% macro test_not_null(model, column_name) %}
    {% set impl = adapter.dispatch('test_not_null', 'dbt') %}
    {{ impl(model, column_name) }}
{% endmacro %}

{% macro default__test_not_null(model, column_name) %}

{% set selected = '*' if should_store_failures() else column_name %}

select {{ selected }}
from {{ model }}
where {{ column_name }} is null

{% endmacro %}

{% macro test_accepted_values(model, column_name, values, quote=true) %}
    {% set impl = adapter.dispatch('test_accepted_values', 'dbt') %}
    {{ impl(model, column_name, values, quote) }}
{% endmacro %}

{% macro default__test_accepted_values(model, column_name, values, quote=true) %}

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
    {% for value in values %}{% if quote %}'{{ value }}'{% else %}{{ value }}{% endif %}{% if not loop.last %},{% endif %}{% endfor %}
)

{% endmacro %}

{% macro test_relationships(model, column_name, to, field) %}
    {% set impl = adapter.dispatch('test_relationships', 'dbt') %}
    {{ impl(model, column_name, to, field) }}
{% endmacro %}

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
