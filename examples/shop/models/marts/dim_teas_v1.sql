select
    tea_sku,
    tea_name,
    leaf_kind,
    price_per_100g_cents
from {{ ref('stg_teas') }}
