{#- materialization, strategy and key come from _clinical.yml -#}
select
    prescriptions.visit_id,
    prescriptions.drug_code,
    prescriptions.prescription_id,
    visits.patient_id,
    visits.clinician_id,
    drugs.drug_name,
    drugs.atc_group,
    drugs.is_controlled,
    prescriptions.dose_mg,
    prescriptions.days_supply,
    prescriptions.repeats,
    prescriptions.days_supply * (1 + prescriptions.repeats) as max_days_covered,
    prescriptions.status,
    prescriptions.prescribed_on,
    prescriptions.updated_at
from {{ ref('stg_prescriptions') }} as prescriptions
inner join {{ ref('fct_visits') }} as visits
    on prescriptions.visit_id = visits.visit_id
inner join {{ ref('stg_drugs') }} as drugs
    on prescriptions.drug_code = drugs.drug_code
{% if is_incremental() %}
where prescriptions.updated_at > (
    select coalesce(max(updated_at), timestamp '1900-01-01') from {{ this }}
)
{% endif %}
