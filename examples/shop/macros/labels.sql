{#- One constant column per keyword argument, named <prefix>_<key>: lineage labels on marts. -#}
{% macro label_columns(prefix) -%}
    {%- for key, value in kwargs.items() %}
    '{{ value }}' as {{ prefix }}_{{ key }}{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{% macro grams_bucket(grams_column, small=100, large=500) -%}
    case
        when {{ grams_column }} < {{ small }} then 'sample'
        when {{ grams_column }} >= {{ large }} then 'bulk'
        else 'regular'
    end
{%- endmacro %}
