{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['visit_id', 'test_code'],
        on_schema_change='append_new_columns'
    )
}}

{#- a result can be corrected after it was first reported: reload a visit's codes when it changes -#}
select
    results.visit_id,
    results.test_code,
    visits.patient_id,
    results.result_value,
    results.unit,
    results.is_pending,
    results.resulted_at
from {{ ref('stg_lab_results') }} as results
inner join {{ ref('fct_visits') }} as visits
    on results.visit_id = visits.visit_id
{% if is_incremental() %}
where results.resulted_at >= (select max(resulted_at) from {{ this }})
   or results.visit_id in (select visit_id from {{ this }} where is_pending)
{% endif %}
