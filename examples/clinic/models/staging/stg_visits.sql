-- depends_on: {{ ref('ehr_visits') }}
{%- set grace = var('open_visit_grace_minutes') %}

select
    visit_id,
    patient_id,
    clinician_id,
    visit_type,
    checked_in_at,
    checked_out_at,
    coalesce(
        {{ minutes_between('checked_in_at', 'checked_out_at') }},
        {{ grace }}
    ) as minutes_on_site,
    checked_out_at is null as is_open,
    is_telehealth,
    fee as list_fee,
    case when is_telehealth then fee * {{ var('telehealth_discount') }} else fee end as billed_fee,
    updated_at
from {{ source('ehr', 'visits') }}
