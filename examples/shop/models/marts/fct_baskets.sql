{{
    config(
        materialized='incremental',
        unique_key='basket_id',
        on_schema_change='ignore'
    )
}}

with lines as (

    select * from {{ ref('line_amounts') }}

),

basket_totals as (

    select
        basket_id,
        count(*) as line_count,
        sum(grams) as total_grams,
        sum(amount_cents) as total_cents
    from lines
    group by basket_id

)

select
    baskets.basket_id,
    baskets.patron_id,
    baskets.placed_at,
    baskets.placed_on,
    baskets.status,
    baskets.updated_at,
    coalesce(basket_totals.line_count, 0) as line_count,
    coalesce(basket_totals.total_grams, 0) as total_grams,
    coalesce(basket_totals.total_cents, 0) as total_cents,
    coalesce(basket_totals.total_cents, 0) >= {{ var('big_basket_cents') }} as is_big_basket
from {{ ref('stg_baskets') }} as baskets
left join basket_totals
    on baskets.basket_id = basket_totals.basket_id
{% if is_incremental() %}
where baskets.updated_at > (select max(updated_at) from {{ this }})
{% endif %}
