{%- set status_labels = fromyaml("
active: in treatment
completed: course finished
cancelled: stopped early
") -%}

select
    prescription_id,
    visit_id,
    drug_code,
    dose_mg,
    days_supply,
    coalesce(repeats, 0) as repeats,
    status,
    case status
    {%- for status, label in status_labels.items() %}
        when '{{ status }}' then '{{ label }}'
    {%- endfor %}
    end as status_label,
    prescribed_on,
    updated_at
from {{ ref('prescriptions') }}
