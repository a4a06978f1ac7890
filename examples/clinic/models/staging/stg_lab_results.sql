select
    visit_id,
    upper(test_code) as test_code,
    result_value,
    unit,
    resulted_at,
    result_value is null as is_pending
from {{ ref('lab_results') }}
