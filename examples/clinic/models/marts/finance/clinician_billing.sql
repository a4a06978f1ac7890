{{
    config(
        pre_hook=[
            "create schema if not exists {{ target.schema }}_audit",
            "create table if not exists {{ target.schema }}_audit.billing_runs (relation_name varchar, row_count bigint, fee_total decimal(12, 2))",
        ],
        post_hook="insert into {{ target.schema }}_audit.billing_runs select '{{ this }}', count(*), sum(billed_fees) from {{ this }}"
    )
}}

{%- set fee_policy -%}
currency: {{ var('fee_currency') }}
telehealth_discount: {{ var('telehealth_discount') }}
billable_types: [checkup, acute, follow_up]
{%- endset -%}
{%- set policy = fromyaml(fee_policy) -%}
{%- if 'vaccination' not in policy['billable_types'] -%}
    {%- do exceptions.warn("clinician_billing: vaccinations are billed to the health authority, not counted here") -%}
{%- endif %}

/* fee policy, as applied:
{{ toyaml(policy) }}*/
select
    visits.clinician_id,
    roster.full_name,
    count(*) as visits,
    sum(visits.billed_fee) as billed_fees,
    sum(visits.list_fee - visits.billed_fee) as telehealth_discounts,
    coalesce(sum(rx.prescription_count), 0) as prescriptions,
    '{{ policy.currency }}' as currency
from {{ ref('fct_visits') }} as visits
left join {{ count_by(ref('fct_prescriptions'), 'visit_id', 'prescription_count') }} as rx
    on visits.visit_id = rx.visit_id
left join {{ ref('clinician_roster') }} as roster
    on visits.clinician_id = roster.clinician_id
where visits.visit_type in (
    {%- for visit_type in policy['billable_types'] -%}
        '{{ visit_type }}'{{ ", " if not loop.last }}
    {%- endfor -%}
)
group by 1, 2
