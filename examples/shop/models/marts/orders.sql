with orders as (
    select * from {{ ref('stg_orders') }}
),

payments as (
    select * from {{ ref('int_order_payments') }}
)

select
    orders.order_id,
    orders.customer_id,
    orders.order_date,
    orders.status,
    {%- for method in var('payment_methods') %}
    cast(coalesce(payments.{{ method }}_amount, 0) as numeric(16, 2)) as {{ method }}_amount,
    {%- endfor %}
    cast(coalesce(payments.total_amount, 0) as numeric(16, 2)) as amount
from orders
left join payments on orders.order_id = payments.order_id
