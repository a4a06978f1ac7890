{{ config(materialized='view', tags=['finance']) }}

select
    settlement_id,
    basket_id,
    method,
    amount_cents,
    settled_on
from {{ source('till', 'settlements') }}
