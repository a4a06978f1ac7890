-- depends_on: {{ ref('raw_patrons') }}
{# the raw tables are seeds here, so the seed must load before the source is read #}

select
    patron_id,
    first_name || ' ' || last_name as full_name,
    lower(email) as email,
    md5(lower(email) || '{{ local_md5(var("shop_currency")) }}') as email_key,
    city,
    cast(joined_on as date) as joined_on
from {{ source('shop_raw', 'patrons') }}
