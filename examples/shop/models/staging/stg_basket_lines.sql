select
    line_id,
    basket_id,
    tea_sku,
    grams,
    unit_price_cents,
    {{ tea_utils.cents_to_units('unit_price_cents') }} as unit_price
from {{ ref('raw_basket_lines') }}
