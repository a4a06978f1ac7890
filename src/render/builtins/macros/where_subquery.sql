{#- The `model` argument of every generic test: the relation, or a filtered subquery when
    the test has a `where` config. -#}
{% macro get_where_subquery(relation) -%}
    {{ return(adapter.dispatch('get_where_subquery', 'dbt')(relation)) }}
{%- endmacro %}

{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {{ return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') }}
    {%- else -%}
        {{ return(relation) }}
    {%- endif -%}
{%- endmacro %}

{#- Whether a test keeps its failing rows: its `store_failures` config, else the flag. -#}
{% macro should_store_failures() -%}
    {%- set configured = config.get('store_failures') -%}
    {%- if configured is none and flags is defined and flags.STORE_FAILURES is defined -%}
        {%- set configured = flags.STORE_FAILURES -%}
    {%- endif -%}
    {{ return(configured) }}
{%- endmacro %}
