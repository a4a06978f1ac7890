{#- Stands in for the pharmacy system: its dispensing log exists before any model runs. -#}
{% macro load_pharmacy_feed() -%}
{%- set rows = [
    (9101, 3001, '2024-01-02', 1, 'MB'),
    (9102, 3002, '2024-01-04', 1, 'MB'),
    (9103, 3003, '2024-01-05', 1, 'JT'),
    (9104, 3004, '2024-01-11', 2, 'JT'),
    (9105, 3006, '2024-01-15', 1, 'MB'),
    (9106, 3007, '2024-01-15', 3, 'AK'),
    (9107, 3009, '2024-01-19', 1, 'AK'),
    (9108, 3010, '2024-01-22', 2, 'MB'),
    (9109, 3012, '2024-01-26', 1, 'JT'),
    (9110, 3013, '2024-01-29', 1, 'JT'),
    (9111, 3015, '2024-02-02', 2, 'AK'),
    (9112, 3016, '2024-02-05', 1, 'MB'),
    (9113, 3018, '2024-02-09', 1, 'MB'),
    (9114, 3020, '2024-02-13', 3, 'AK'),
    (9115, 3021, '2024-02-16', 1, 'JT'),
    (9116, 3024, '2024-02-23', 1, 'JT'),
    (9117, 3025, '2024-02-27', 2, 'MB'),
    (9118, 3028, '2024-03-04', 1, 'AK'),
    (9119, 3030, '2024-03-08', 1, 'AK'),
    (9120, 3033, '2024-03-14', 1, 'MB'),
] -%}
create schema if not exists pharmacy;
create table if not exists pharmacy."dispensing log" as
select * from (
    values
    {%- for dispense_id, prescription_id, dispensed_on, packs, pharmacist in rows %}
        ({{ dispense_id }}, {{ prescription_id }}, date '{{ dispensed_on }}', {{ packs }}, '{{ pharmacist }}'){{ "," if not loop.last }}
    {%- endfor %}
) as feed (dispense_id, prescription_id, dispensed_on, packs, pharmacist_initials)
{%- endmacro %}
