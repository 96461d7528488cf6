-- depends_on: {{ ref('raw_orders') }}
select
    order_id,
    customer_id,
    order_date,
    status
from {{ source('shop', 'raw_orders') }}
