{{ config(severity='error', tags=['pharmacy']) }}

-- a pack is never dispensed before its prescription was written
select
    dispensing.dispense_id,
    dispensing.dispensed_on,
    prescriptions.prescribed_on,
    {{ minutes_between('prescriptions.prescribed_on', 'dispensing.dispensed_on') }} as minutes_after
from {{ ref('stg_dispensing') }} as dispensing
inner join {{ ref('fct_prescriptions') }} as prescriptions
    on dispensing.prescription_id = prescriptions.prescription_id
where dispensing.dispensed_on < prescriptions.prescribed_on
