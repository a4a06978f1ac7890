{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key='visit_id'
    )
}}

select
    visits.visit_id,
    visits.patient_id,
    visits.clinician_id,
    clinicians.rota_group,
    visits.visit_type,
    visits.checked_in_at,
    cast(visits.checked_in_at as date) as visit_date,
    visits.minutes_on_site,
    visits.is_open,
    visits.is_telehealth,
    visits.list_fee,
    visits.billed_fee,
    visits.updated_at
from {{ ref('stg_visits') }} as visits
left join {{ ref('stg_clinicians') }} as clinicians
    on visits.clinician_id = clinicians.clinician_id
{% if is_incremental() %}
where visits.updated_at > (select max(updated_at) from {{ this }})
{% endif %}
