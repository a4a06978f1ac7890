-- ad hoc: minutes on site per clinician and visit type, for the rota review
select
    visits.clinician_id,
    visits.visit_type,
    count(*) as visits,
    sum(visits.minutes_on_site) as minutes_on_site,
    sum(rx.prescription_count) as prescriptions
from {{ ref('fct_visits') }} as visits
left join {{ count_by(ref('fct_prescriptions'), 'visit_id', 'prescription_count') }} as rx
    on visits.visit_id = rx.visit_id
group by 1, 2
order by 1, 2
