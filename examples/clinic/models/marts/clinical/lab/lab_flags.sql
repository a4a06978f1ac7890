{{ config(materialized='view') }}
{#- upper limits of normal; a deployment overrides them with --vars -#}
{%- set upper_limits = var('lab_upper_limits', {'HBA1C': 48, 'LDL': 3.0, 'CRP': 5, 'HB': 160}) -%}
{%- set ns = namespace(codes=[], count=0) -%}
{%- for code in upper_limits -%}
    {%- set ns.codes = ns.codes + ["'" ~ code ~ "'"] -%}
    {%- set ns.count = ns.count + 1 -%}
{%- endfor %}

select
    visit_id,
    test_code,
    patient_id,
    result_value,
    case test_code
    {%- for code, limit in upper_limits.items() %}
        when '{{ code }}' then {{ limit }}
    {%- endfor %}
    end as upper_limit,
    result_value > case test_code
    {%- for code, limit in upper_limits.items() %}
        when '{{ code }}' then {{ limit }}
    {%- endfor %}
    end as is_high,
    {{ ns.count }} as codes_checked
from {{ ref('fct_lab_results') }}
where test_code in ({{ ns.codes | join(', ') }})
  and not is_pending
