{#- Custom schemas: verbatim in prod, appended to the target schema everywhere else (dbt's default). -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- elif target.name == 'prod' -%}
        {{ custom_schema_name | trim }}
    {%- else -%}
        {{ target.schema }}_{{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}

{#- Registry models get a reg_ prefix so the records team finds them; versions keep dbt's _v<n>. -#}
{% macro generate_alias_name(custom_alias_name=none, node=none) -%}
    {%- if custom_alias_name -%}
        {{ custom_alias_name | trim }}
    {%- elif node.resource_type == 'model' and node.fqn[1] == 'registry' -%}
        reg_{{ node.name }}
    {%- elif node.version -%}
        {{ node.name }}_v{{ (node.version | string) | replace('.', '_') }}
    {%- else -%}
        {{ node.name }}
    {%- endif -%}
{%- endmacro %}
