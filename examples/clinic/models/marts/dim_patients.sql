{#- v1: visit counts only; the registry team still reads it -#}
with visit_counts as (

    select patient_id, count(*) as visit_count, max(visit_date) as last_visit_on
    from {{ ref('fct_visits') }}
    group by patient_id

)

select
    patients.patient_id,
    patients.full_name,
    patients.sex,
    coalesce(visit_counts.visit_count, 0) as visit_count,
    visit_counts.last_visit_on
from {{ ref('patient_index') }} as patients
left join visit_counts
    on patients.patient_id = visit_counts.patient_id
