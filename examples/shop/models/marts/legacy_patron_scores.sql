{{ config(enabled=false) }}

-- replaced by dim_patrons.loyalty_tier; kept until the old report is retired
select patron_id, basket_count * 10 as score
from {{ ref('dim_patrons') }}
