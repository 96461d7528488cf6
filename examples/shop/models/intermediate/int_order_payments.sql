-- One row per paid order: the total and the amount paid with each method.
select
    order_id,
    {%- for method in var('payment_methods') %}
    cast(sum(case when payment_method = '{{ method }}' then amount else 0 end) as numeric(16, 2)) as {{ method }}_amount,
    {%- endfor %}
    cast(sum(amount) as numeric(16, 2)) as total_amount
from {{ ref('stg_payments') }}
group by order_id
