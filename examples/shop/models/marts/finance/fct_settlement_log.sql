{{ config(materialized='incremental', incremental_strategy='append') }}

select
    settlement_id,
    basket_id,
    method,
    amount_cents,
    settled_on
from {{ ref('stg_settlements') }}
{% if is_incremental() %}
where settlement_id > (select coalesce(max(settlement_id), 0) from {{ this }})
{% endif %}
