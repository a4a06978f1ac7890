select
    drug_code,
    drug_name,
    atc_class,
    left(atc_class, 1) as atc_group,
    strength_mg,
    pack_price,
    is_controlled,
    updated_at
from {{ ref('formulary') }}
