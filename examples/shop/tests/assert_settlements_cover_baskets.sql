{{ config(severity='error', tags=['finance']) }}

-- a settled basket is never paid more than its total
select
    settlements.basket_id,
    sum(settlements.amount_cents) as paid_cents,
    max(baskets.total_cents) as total_cents
from {{ ref('fct_settlement_log') }} as settlements
inner join {{ ref('fct_baskets') }} as baskets
    on settlements.basket_id = baskets.basket_id
group by settlements.basket_id
having sum(settlements.amount_cents) > max(baskets.total_cents)
