{{
    config(
        materialized='table',
        pre_hook="create table if not exists {{ target.schema }}.build_audit (model_name varchar, row_count bigint)",
        post_hook=[
            "insert into {{ target.schema }}.build_audit select '{{ this.identifier }}', count(*) from {{ this }}",
        ]
    )
}}

{%- set opened = modules.datetime.datetime.strptime(var('first_open_day'), '%Y-%m-%d') -%}
{%- set report = {"currency": var('shop_currency'), "opened": opened.strftime('%d %b %Y')} -%}

select
    calendar.calendar_day,
    calendar.is_weekend,
    count(baskets.basket_id) as basket_count,
    coalesce(sum(baskets.total_cents), 0) as revenue_cents,
    '{{ tojson(report) }}' as report_meta
from {{ ref('tea_utils', 'tea_calendar') }} as calendar
left join {{ ref('shop', 'fct_baskets') }} as baskets
    on baskets.placed_on = calendar.calendar_day
    and baskets.status != 'returned'
where calendar.calendar_day >= date '{{ opened.date().isoformat() }}'
group by 1, 2
