{%- set loyalty_threshold = var('shop:loyalty_threshold') -%}

with baskets as (

    select
        patron_id,
        count(*) as basket_count,
        sum(total_cents) as lifetime_cents,
        min(placed_on) as first_basket_on,
        max(placed_on) as last_basket_on
    from {{ ref('fct_baskets') }}
    where status != 'returned'
    group by patron_id

)

select
    patrons.patron_id,
    patrons.full_name,
    patrons.email_key,
    patrons.city,
    patrons.joined_on,
    coalesce(baskets.basket_count, 0) as basket_count,
    coalesce(baskets.lifetime_cents, 0) as lifetime_cents,
    baskets.first_basket_on,
    baskets.last_basket_on,
    coalesce(baskets.basket_count, 0) >= {{ loyalty_threshold }} as is_regular,
    {{ loyalty_tier('coalesce(baskets.basket_count, 0)') }} as loyalty_tier
from {{ ref('stg_patrons') }} as patrons
left join baskets
    on patrons.patron_id = baskets.patron_id
