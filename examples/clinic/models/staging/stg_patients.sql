-- depends_on: {{ ref('ehr_patients') }}
{#- the EHR tables are seeds here, so the seed must load before the source is read #}

{% call with_load_metadata('ehr.patients') %}
select
    patient_id,
    mrn,
    given_name || ' ' || family_name as full_name,
    birth_date,
    case sex when 'F' then 'female' when 'M' then 'male' else 'other' end as sex,
    upper(postcode) as postcode,
    is_deceased,
    registered_at
from {{ source('ehr', 'patients') }}
{% endcall %}
