{#- dbt's cross-database macros (`dbt.type_string()`, `dbt.dateadd(...)`, ...), each dispatched
    as dbt dispatches it, so that a project or package can override any of them. Each returns
    the exact text dbt-duckdb 1.11 renders (whitespace included: it lands in compiled SQL),
    checked by `builtins::macros::tests::cross_database_macros_render_as_dbt_duckdb` against
    `tests/fixtures/dbt/cross_db.json`. Where dbt-duckdb has a DuckDB form of its own, only that
    form is here (`duckdb__`): another adapter gets a clear "no such macro" error instead of SQL
    that might differ from its dbt adapter's. -#}

{#- Types, by dbt's generic names. -#}
{% macro type_string() %}{{ return(adapter.dispatch('type_string', 'dbt')()) }}{% endmacro %}
{% macro default__type_string() %}{{ return('TEXT') }}{% endmacro %}
{% macro type_timestamp() %}{{ return(adapter.dispatch('type_timestamp', 'dbt')()) }}{% endmacro %}
{% macro default__type_timestamp() %}{{ return('timestamp') }}{% endmacro %}
{% macro type_float() %}{{ return(adapter.dispatch('type_float', 'dbt')()) }}{% endmacro %}
{% macro default__type_float() %}{{ return('float') }}{% endmacro %}
{% macro type_numeric() %}{{ return(adapter.dispatch('type_numeric', 'dbt')()) }}{% endmacro %}
{% macro default__type_numeric() %}{{ return('numeric(28,6)') }}{% endmacro %}
{% macro type_bigint() %}{{ return(adapter.dispatch('type_bigint', 'dbt')()) }}{% endmacro %}
{% macro default__type_bigint() %}{{ return('bigint') }}{% endmacro %}
{% macro type_int() %}{{ return(adapter.dispatch('type_int', 'dbt')()) }}{% endmacro %}
{% macro default__type_int() %}{{ return('integer') }}{% endmacro %}
{% macro type_boolean() %}{{ return(adapter.dispatch('type_boolean', 'dbt')()) }}{% endmacro %}
{% macro default__type_boolean() %}{{ return('boolean') }}{% endmacro %}

{#- Strings. -#}
{% macro hash(field) %}{{ return(adapter.dispatch('hash', 'dbt')(field)) }}{% endmacro %}
{% macro default__hash(field) %}{{ return('md5(cast(' ~ field ~ ' as ' ~ dbt.type_string() ~ '))') }}{% endmacro %}
{% macro concat(fields) %}{{ return(adapter.dispatch('concat', 'dbt')(fields)) }}{% endmacro %}
{% macro default__concat(fields) %}{{ return(fields | join(' || ')) }}{% endmacro %}
{% macro escape_single_quotes(expression) %}{{ return(adapter.dispatch('escape_single_quotes', 'dbt')(expression)) }}{% endmacro %}
{% macro default__escape_single_quotes(expression) %}{{ return(expression | replace("'", "''")) }}{% endmacro %}
{% macro string_literal(value) %}{{ return(adapter.dispatch('string_literal', 'dbt')(value)) }}{% endmacro %}
{% macro default__string_literal(value) %}{{ return("'" ~ value ~ "'") }}{% endmacro %}
{% macro position(substring_text, string_text) %}{{ return(adapter.dispatch('position', 'dbt')(substring_text, string_text)) }}{% endmacro %}
{% macro default__position(substring_text, string_text) %}{{ return('\n\n    position(\n        ' ~ substring_text ~ ' in ' ~ string_text ~ '\n    )') }}{% endmacro %}
{% macro length(expression) %}{{ return(adapter.dispatch('length', 'dbt')(expression)) }}{% endmacro %}
{% macro default__length(expression) %}{{ return('\n\n    length(\n        ' ~ expression ~ '\n    )') }}{% endmacro %}
{% macro replace(field, old_chars, new_chars) %}{{ return(adapter.dispatch('replace', 'dbt')(field, old_chars, new_chars)) }}{% endmacro %}
{% macro default__replace(field, old_chars, new_chars) %}{{ return('\n\n    replace(\n        ' ~ field ~ ',\n        ' ~ old_chars ~ ',\n        ' ~ new_chars ~ '\n    )\n\n\n') }}{% endmacro %}
{% macro right(string_text, length_expression) %}{{ return(adapter.dispatch('right', 'dbt')(string_text, length_expression)) }}{% endmacro %}
{% macro default__right(string_text, length_expression) %}{{ return('\n\n    right(\n        ' ~ string_text ~ ',\n        ' ~ length_expression ~ '\n    )') }}{% endmacro %}
{% macro split_part(string_text, delimiter_text, part_number) %}{{ return(adapter.dispatch('split_part', 'dbt')(string_text, delimiter_text, part_number)) }}{% endmacro %}
{% macro postgres__split_part(string_text, delimiter_text, part_number) %}{% if part_number >= 0 %}{{ return('\n\n  \n    \n\n    split_part(\n        ' ~ string_text ~ ',\n        ' ~ delimiter_text ~ ',\n        ' ~ part_number ~ '\n        )\n\n\n  \n\n') }}{% else %}{{ exceptions.raise_compiler_error('split_part with a negative part number is not supported on postgres yet') }}{% endif %}{% endmacro %}
{% macro duckdb__split_part(string_text, delimiter_text, part_number) %}{{ return('\n    string_split(' ~ string_text ~ ', ' ~ delimiter_text ~ ')[ ' ~ part_number ~ ' ]\n') }}{% endmacro %}
{% macro listagg(measure, delimiter_text="','", order_by_clause=none, limit_num=none) %}{{ return(adapter.dispatch('listagg', 'dbt')(measure, delimiter_text, order_by_clause, limit_num)) }}{% endmacro %}
{% macro duckdb__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
    {%- if limit_num -%}
        {{ return('list_aggr(\n        (array_agg(\n            ' ~ measure ~ '\n            ' ~ (order_by_clause or '') ~ '\n        ))[1:' ~ limit_num ~ '],\n        \'string_agg\',\n        ' ~ delimiter_text ~ '\n        )') }}
    {%- else -%}
        {{ return('\n    string_agg(\n        ' ~ measure ~ ',\n        ' ~ delimiter_text ~ '\n        ' ~ (order_by_clause or '') ~ '\n        )') }}
    {%- endif -%}
{%- endmacro %}

{#- Casts. -#}
{% macro cast(field, type) %}{{ return(adapter.dispatch('cast', 'dbt')(field, type)) }}{% endmacro %}
{% macro default__cast(field, type) %}{{ return('\n    cast(' ~ field ~ ' as ' ~ type ~ ')\n') }}{% endmacro %}
{% macro safe_cast(field, type) %}{{ return(adapter.dispatch('safe_cast', 'dbt')(field, type)) }}{% endmacro %}
{% macro default__safe_cast(field, type) %}{{ return('\n    \n    cast(' ~ field ~ ' as ' ~ type ~ ')\n') }}{% endmacro %}
{% macro cast_bool_to_text(field) %}{{ return(adapter.dispatch('cast_bool_to_text', 'dbt')(field)) }}{% endmacro %}
{% macro default__cast_bool_to_text(field) %}{{ return('\n  \n    cast(' ~ field ~ ' as ' ~ dbt.type_string() ~ ')\n\n') }}{% endmacro %}

{#- Aggregates and set operators. -#}
{% macro any_value(expression) %}{{ return(adapter.dispatch('any_value', 'dbt')(expression)) }}{% endmacro %}
{% macro duckdb__any_value(expression) %}{{ return('arbitrary(' ~ expression ~ ')') }}{% endmacro %}
{% macro bool_or(expression) %}{{ return(adapter.dispatch('bool_or', 'dbt')(expression)) }}{% endmacro %}
{% macro default__bool_or(expression) %}{{ return('bool_or(' ~ expression ~ ')') }}{% endmacro %}
{% macro except() %}{{ return(adapter.dispatch('except', 'dbt')()) }}{% endmacro %}
{% macro default__except() %}{{ return('\n\n    except\n\n') }}{% endmacro %}
{% macro intersect() %}{{ return(adapter.dispatch('intersect', 'dbt')()) }}{% endmacro %}
{% macro default__intersect() %}{{ return('\n\n    intersect\n\n') }}{% endmacro %}

{#- Dates and times. -#}
{% macro current_timestamp() %}{{ return(adapter.dispatch('current_timestamp', 'dbt')()) }}{% endmacro %}
{% macro duckdb__current_timestamp() %}{{ return('now()') }}{% endmacro %}
{% macro postgres__current_timestamp() %}{{ return('now()') }}{% endmacro %}
{% macro current_timestamp_backcompat() %}{{ return(adapter.dispatch('current_timestamp_backcompat', 'dbt')()) }}{% endmacro %}
{% macro default__current_timestamp_backcompat() %}{{ return('\n    current_timestamp::timestamp\n') }}{% endmacro %}
{% macro date(year, month, day) %}{{ return(adapter.dispatch('date', 'dbt')(year, month, day)) }}{% endmacro %}
{% macro duckdb__date(year, month, day) %}{{ return('make_date(' ~ year ~ ', ' ~ month ~ ', ' ~ day ~ ')') }}{% endmacro %}
{% macro date_trunc(datepart, date) %}{{ return(adapter.dispatch('date_trunc', 'dbt')(datepart, date)) }}{% endmacro %}
{% macro default__date_trunc(datepart, date) %}{{ return("date_trunc('" ~ datepart ~ "', " ~ date ~ ")") }}{% endmacro %}
{% macro dateadd(datepart, interval, from_date_or_timestamp) %}{{ return(adapter.dispatch('dateadd', 'dbt')(datepart, interval, from_date_or_timestamp)) }}{% endmacro %}
{% macro postgres__dateadd(datepart, interval, from_date_or_timestamp) %}{{ return('\n\n    ' ~ from_date_or_timestamp ~ " + ((interval '1 " ~ datepart ~ "') * (" ~ interval ~ '))\n\n') }}{% endmacro %}
{% macro duckdb__dateadd(datepart, interval, from_date_or_timestamp) %}{{ return('\n\n    (' ~ from_date_or_timestamp ~ ' + cast(' ~ interval ~ ' as bigint) * interval 1 ' ~ datepart ~ ')') }}{% endmacro %}
{% macro datediff(first_date, second_date, datepart) %}{{ return(adapter.dispatch('datediff', 'dbt')(first_date, second_date, datepart)) }}{% endmacro %}
{#- PostgreSQL has no datediff: whole units between the two, from their parts (day: the dates'
    difference; month and year: the calendar parts'; hour, minute, second: from the epoch). -#}
{% macro postgres__datediff(first_date, second_date, datepart) -%}
{%- set d = datepart | lower -%}
{%- set years = "(date_part('year', (" ~ second_date ~ ")::date) - date_part('year', (" ~ first_date ~ ")::date))" -%}
{%- if d == 'day' -%}(({{ second_date }})::date - ({{ first_date }})::date)
{%- elif d == 'week' -%}((({{ second_date }})::date - ({{ first_date }})::date) / 7)
{%- elif d == 'month' -%}({{ years }} * 12 + date_part('month', ({{ second_date }})::date) - date_part('month', ({{ first_date }})::date))
{%- elif d == 'quarter' -%}({{ years }} * 4 + date_part('quarter', ({{ second_date }})::date) - date_part('quarter', ({{ first_date }})::date))
{%- elif d == 'year' -%}{{ years }}
{%- elif d in ('hour', 'minute', 'second') -%}
{%- set per = {'hour': 3600, 'minute': 60, 'second': 1}[d] -%}
floor((extract(epoch from ({{ second_date }})::timestamp) - extract(epoch from ({{ first_date }})::timestamp)) / {{ per }})
{%- else -%}{{ exceptions.raise_compiler_error('datediff by ' ~ datepart ~ ' is not supported on postgres yet') }}
{%- endif -%}
{%- endmacro %}
{% macro duckdb__datediff(first_date, second_date, datepart) -%}
    {%- set days = "\n        (date_diff('day', " ~ first_date ~ "::timestamp, " ~ second_date ~ "::timestamp ))\n    " -%}
    {%- if datepart == 'week' -%}
        {#- Whole weeks, counted as dbt-duckdb counts them: by days, then one more or less where
            the weekdays cross. -#}
        {{ return("\n            (" ~ days ~ " // 7 + case\n            when date_part('dow', (" ~ first_date ~ ")::timestamp) <= date_part('dow', ("
            ~ second_date ~ ")::timestamp) then\n                case when " ~ first_date ~ " <= " ~ second_date ~ " then 0 else -1 end\n            else\n                case when "
            ~ first_date ~ " <= " ~ second_date ~ " then 1 else 0 end\n        end)\n    ") }}
    {%- else -%}
        {{ return("\n        (date_diff('" ~ datepart ~ "', " ~ first_date ~ "::timestamp, " ~ second_date ~ "::timestamp ))\n    ") }}
    {%- endif -%}
{%- endmacro %}
{% macro last_day(date, datepart) %}{{ return(adapter.dispatch('last_day', 'dbt')(date, datepart)) }}{% endmacro %}
{% macro duckdb__last_day(date, datepart) -%}
    {#- The day before the start of the next period. -#}
    {%- set next_start = dbt.dateadd(datepart, 1, dbt.date_trunc(datepart, date)) -%}
    {{ return('cast(\n        \n\n    (' ~ next_start ~ ' + cast(-1 as bigint) * interval 1 day)\n        as date)') }}
{%- endmacro %}
