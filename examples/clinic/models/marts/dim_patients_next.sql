{#- v2 (pre-release): adds age bands and telehealth use -#}
{%- set age_bands = [(18, 'child'), (40, 'adult'), (65, 'middle_age')] -%}
{%- set ns = namespace(upper_bounds=[]) -%}
{%- for bound, _ in age_bands -%}
    {%- set ns.upper_bounds = ns.upper_bounds + [bound | string] -%}
{%- endfor %}
-- age band upper bounds: {{ ns.upper_bounds | join(' / ') }}

with visit_counts as (

    select
        patient_id,
        count(*) as visit_count,
        count(*) filter (where is_telehealth) as telehealth_visits,
        max(visit_date) as last_visit_on
    from {{ ref('fct_visits') }}
    group by patient_id

)

select
    patients.patient_id,
    patients.full_name,
    patients.sex,
    case
    {%- for bound, band in age_bands %}
        when patients.age_at_year_end < {{ bound }} then '{{ band }}'
    {%- endfor %}
        else 'senior'
    end as age_band,
    coalesce(visit_counts.visit_count, 0) as visit_count,
    coalesce(visit_counts.telehealth_visits, 0) as telehealth_visits,
    visit_counts.last_visit_on
from {{ ref('patient_index') }} as patients
left join visit_counts
    on patients.patient_id = visit_counts.patient_id
