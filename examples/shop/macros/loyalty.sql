{#- The loyalty tiers: minimum number of baskets per tier, best tier first. -#}
{% macro loyalty_tiers() %}
    {%- set tiers = fromjson('[{"name": "gold", "min_baskets": 4}, {"name": "silver", "min_baskets": 2}]') -%}
    {{ return(tiers) }}
{% endmacro %}

{% macro loyalty_tier(basket_count_column, fallback='leaf') -%}
    case
    {%- for tier in loyalty_tiers() %}
        when {{ basket_count_column }} >= {{ tier['min_baskets'] }} then '{{ tier['name'] }}'
    {%- endfor %}
        else '{{ fallback }}'
    end
{%- endmacro %}
