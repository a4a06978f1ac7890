{#- One row per day from calendar_start, calendar_days long. -#}
{%- set start = modules.datetime.datetime.strptime(var('calendar_start'), '%Y-%m-%d').date() -%}
{%- set days = var('calendar_days') | int -%}
{%- set stop = start + modules.datetime.timedelta(days=days) -%}
{%- if target.type == 'postgres' -%}
{#- generate_series includes its end; dow 0 is Sunday, as DuckDB's dayofweek -#}
{%- set last = stop - modules.datetime.timedelta(days=1) %}
select
    cast(day as date) as calendar_day,
    extract(dow from day) in (0, 6) as is_weekend
from generate_series(date '{{ start.isoformat() }}', date '{{ last.isoformat() }}', interval '1 day') as t(day)
{%- else -%}

select
    cast(day as date) as calendar_day,
    dayofweek(day) in (0, 6) as is_weekend
from range(date '{{ start.isoformat() }}', date '{{ stop.isoformat() }}', interval 1 day) as t(day)
{%- endif %}
