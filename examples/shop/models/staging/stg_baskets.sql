-- depends_on: {{ ref('raw_baskets') }}

select
    basket_id,
    patron_id,
    cast(placed_at as timestamp) as placed_at,
    cast(placed_at as date) as placed_on,
    status,
    cast(updated_at as timestamp) as updated_at,
    '{{ env_var("SHOP_SALES_CHANNEL", "web") }}' as sales_channel,
    '{{ var("sales_region", "eu-west") }}' as sales_region
from {{ source('shop_raw', 'baskets') }}
where cast(placed_at as date) >= date '{{ var("first_open_day") }}'
