{{
    config(
        materialized='incremental',
        unique_key='order_date',
        incremental_strategy='delete+insert'
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
