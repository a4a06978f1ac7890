{#- Wraps a feed's select with where its rows came from; the feed's query is the call block's body. -#}
{% macro with_load_metadata(feed) -%}
select
    feed_rows.*,
    '{{ feed }}' as loaded_from,
    '{{ var("clinic_name") }}' as clinic_name
from (
    {{ caller() | trim | indent(4) }}
) as feed_rows
{%- endmacro %}

{#- One select list entry per column; the call block renders each entry, loop.last drops the comma. -#}
{% macro each_column(columns) -%}
    {%- for column in columns %}
    {{ caller(column) }}{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{#- A per-key count of any relation, as a subquery to join on. -#}
{% macro count_by(relation, key_column, count_alias) -%}
(
        select {{ key_column }}, count(*) as {{ count_alias }}
        from {{ relation }}
        group by {{ key_column }}
    )
{%- endmacro %}

{#- Minutes between two timestamps; null while either is missing. -#}
{% macro minutes_between(start_column, end_column) -%}
    date_diff('minute', {{ start_column }}, {{ end_column }})
{%- endmacro %}
