{#- Stands in for the till system's loader: the receipts table exists before any model runs. -#}
{% macro load_raw_settlements() -%}
create table if not exists till.raw_settlements as
select * from (
    values
        (9001, 5001, 'cash', 5000, date '2024-01-04'),
        (9002, 5002, 'card', 2400, date '2024-02-08'),
        (9003, 5003, 'transfer', 1400, date '2024-01-08'),
        (9004, 5004, 'card', 9000, date '2024-01-26'),
        (9005, 5005, 'transfer', 650, date '2024-01-27'),
        (9006, 5006, 'cash', 6000, date '2024-01-06'),
        (9007, 5007, 'card', 16600, date '2024-01-28'),
        (9008, 5008, 'card', 14200, date '2024-01-20'),
        (9009, 5009, 'card', 5400, date '2024-01-27'),
        (9010, 5010, 'transfer', 700, date '2024-01-12'),
        (9011, 5011, 'card', 1800, date '2024-01-05'),
        (9012, 5012, 'cash', 3950, date '2024-01-23'),
        (9013, 5014, 'voucher', 4325, date '2024-01-20'),
        (9014, 5014, 'card', 8650, date '2024-01-20'),
        (9015, 5015, 'transfer', 7000, date '2024-02-11'),
        (9016, 5017, 'transfer', 2525, date '2024-01-16'),
        (9017, 5018, 'card', 4825, date '2024-01-27'),
        (9018, 5020, 'card', 3725, date '2024-02-01'),
        (9019, 5021, 'card', 1400, date '2024-02-02'),
        (9020, 5022, 'voucher', 2333, date '2024-01-14'),
        (9021, 5022, 'card', 4667, date '2024-01-14'),
        (9022, 5023, 'transfer', 1400, date '2024-01-03'),
        (9023, 5025, 'card', 7000, date '2024-01-11'),
        (9024, 5026, 'transfer', 4940, date '2024-02-02'),
        (9025, 5027, 'cash', 5295, date '2024-02-10')
) as receipts (settlement_id, basket_id, method, amount_cents, settled_on)
{%- endmacro %}
