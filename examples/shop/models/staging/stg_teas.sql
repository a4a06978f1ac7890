select
    tea_sku,
    tea_name,
    leaf_kind,
    origin,
    price_per_100g_cents,
    updated_at
from {{ ref('tea_catalog') }}
