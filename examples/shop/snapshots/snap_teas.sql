{% snapshot snap_teas %}

{{
    config(
        target_schema='snapshots',
        unique_key='tea_sku',
        strategy='timestamp',
        updated_at='updated_at',
    )
}}

select * from {{ ref('stg_teas') }}

{% endsnapshot %}
