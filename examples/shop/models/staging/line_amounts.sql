{{ config(materialized='ephemeral') }}

select
    lines.line_id,
    lines.basket_id,
    lines.tea_sku,
    teas.leaf_kind,
    lines.grams,
    lines.unit_price_cents * lines.grams / 100 as amount_cents
from {{ ref('stg_basket_lines') }} as lines
inner join {{ ref('stg_teas') }} as teas
    on lines.tea_sku = teas.tea_sku
