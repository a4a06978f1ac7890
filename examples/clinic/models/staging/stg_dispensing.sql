{{ log("stg_dispensing reads " ~ source('pharmacy', 'dispensing_log'), info=true) }}
select
    dispense_id,
    prescription_id,
    dispensed_on,
    packs,
    pharmacist_initials
from {{ source('pharmacy', 'dispensing_log') }}
