-- ad hoc: which cities bring regulars, for the next shop's location
select
    city,
    loyalty_tier,
    count(*) as patrons,
    sum(lifetime_cents) as lifetime_cents
from {{ ref('dim_patrons') }}
group by city, loyalty_tier
order by city, loyalty_tier
