{#- Cents to currency units, rounded to the given number of decimals. -#}
{% macro cents_to_units(column_name, decimals=2) -%}
    round({{ column_name }} / 100.0, {{ decimals }})
{%- endmacro %}
