{#- v2 adds the origin and prices in euros; v1 stays for the old dashboards -#}
select
    tea_sku,
    tea_name,
    leaf_kind,
    origin,
    {{ tea_utils.cents_to_units('price_per_100g_cents') }} as price_per_100g
from {{ ref('stg_teas') }}
