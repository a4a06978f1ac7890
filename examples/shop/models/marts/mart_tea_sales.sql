{#- sales per tea and size bucket; the ephemeral model's CTE is prepended by dbt -#}
select
    teas.tea_sku,
    teas.tea_name,
    {{ grams_bucket('lines.grams', large=250) }} as size_bucket,
    count(*) as lines_sold,
    sum(lines.grams) as grams_sold,
    sum(lines.amount_cents) as revenue_cents,
    {{ safe_divide('sum(lines.amount_cents)', 'sum(lines.grams)') }} as cents_per_gram,
    {{ label_columns('built', by='shop', currency=var('shop_currency')) }}
from {{ ref('line_amounts') }} as lines
inner join {{ ref('dim_teas', v=1) }} as teas
    on lines.tea_sku = teas.tea_sku
group by 1, 2, 3
