{% snapshot snap_formulary %}

{{
    config(
        unique_key='drug_code',
        strategy='check',
        check_cols='all',
    )
}}

select drug_code, drug_name, atc_class, strength_mg, pack_price, is_controlled
from {{ ref('stg_drugs') }}

{% endsnapshot %}
