{#- Each run rebuilds the days it selects: delete+insert by order_date, or on Spark,
    which has no delete+insert, insert_overwrite of those days' partitions. -#}
{{
    config(
        materialized='incremental',
        unique_key='order_date',
        incremental_strategy='insert_overwrite' if target.type == 'spark' else 'delete+insert',
        partition_by=['order_date'] if target.type == 'spark' else none,
        file_format='parquet' if target.type == 'spark' else none
    )
}}

select
    order_date,
    count(*) as number_of_orders,
    cast(sum(amount) as numeric(16, 2)) as revenue
from {{ ref('orders') }}
where status != 'returned'
    and order_date >= cast('{{ var("min_order_date") }}' as date)
{% if is_incremental() %}
    -- the latest day may still be filling up: rebuild it and anything newer
    and order_date >= (select max(order_date) from {{ this }})
{% endif %}
group by order_date
