-- depends_on: {{ ref('raw_customers') }}
select
    customer_id,
    first_name,
    last_name,
    lower(email) as email,
    signup_date
from {{ source('shop', 'raw_customers') }}
