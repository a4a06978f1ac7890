{%- set contact_columns = ['full_name', 'sex', 'birth_date', 'postcode'] -%}
{{ print("patient_index: contact columns " ~ contact_columns | join(", ")) }}

select
    patient_id,
    mrn,
    {%- call(column) each_column(contact_columns) -%}
        {{ column }}
    {%- endcall %},
    date_diff('year', birth_date, date '2024-12-31') as age_at_year_end,
    registered_at
from {{ ref('stg_patients') }}
where not is_deceased
