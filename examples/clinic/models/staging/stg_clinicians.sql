{#- the rota's spreadsheet keeps its column headings; the seed quotes them, so must we -#}
{%- set headings = ['Clinician ID', 'Full Name', 'Specialty', 'Started On', 'Day Rate', 'Accepts New Patients'] -%}
{%- set names = ['clinician_id', 'full_name', 'specialty', 'started_on', 'day_rate', 'accepts_new_patients'] -%}

select
{%- for heading, name in zip(headings, names) %}
    {{ adapter.quote(heading) }} as {{ name }},
{%- endfor %}
    coalesce({{ adapter.quote('Specialty') }}, 'locum') as rota_group
from {{ ref('clinicians') }}
