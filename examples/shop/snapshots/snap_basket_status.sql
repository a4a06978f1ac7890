{% snapshot snap_basket_status %}

{{
    config(
        unique_key='basket_id',
        strategy='check',
        check_cols=['status', 'patron_id'],
    )
}}

select basket_id, patron_id, status from {{ ref('stg_baskets') }}

{% endsnapshot %}
