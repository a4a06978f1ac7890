{% snapshot snap_prescription_status %}

{{
    config(
        unique_key='prescription_id',
        strategy='check',
        check_cols=['status', 'days_supply'],
        tags=['pharmacy'],
    )
}}

select prescription_id, visit_id, drug_code, status, days_supply, repeats
from {{ ref('stg_prescriptions') }}

{% endsnapshot %}
