select
    clinician_id,
    full_name,
    rota_group,
    started_on,
    accepts_new_patients is not false as accepts_new_patients
from {{ ref('stg_clinicians') }}
order by clinician_id
