"""The two seed files of dbt-labs/jaffle-shop that a fetched snapshot lacks (its largest
files, raw_orders.csv and raw_items.csv), generated with the columns its staging models
read: orders of the customers in raw_customers.csv at the stores of raw_stores.csv, one
to three items each from raw_products.csv, subtotal, tax at the store's rate and total in
cents. Deterministic (seeded), so a kill rate measured on it can be measured again.

    python bench/jaffle_seeds.py PATH/TO/jaffle-shop [--orders 3000]
"""

from __future__ import annotations

import argparse
import csv
import random
from datetime import datetime, timedelta
from pathlib import Path


def main() -> None:
    """Write seeds/jaffle-data/raw_orders.csv and raw_items.csv into the project."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project", type=Path)
    parser.add_argument("--orders", type=int, default=3000)
    args = parser.parse_args()
    data = args.project / "seeds" / "jaffle-data"
    chance = random.Random(20161)

    def rows(name: str) -> list[dict[str, str]]:
        with (data / name).open(newline="") as handle:
            return list(csv.DictReader(handle))

    customers = [row["id"] for row in rows("raw_customers.csv")]
    stores = rows("raw_stores.csv")
    products = rows("raw_products.csv")
    start = datetime(2016, 9, 1)
    orders, items = [], []
    for number in range(1, args.orders + 1):
        store = chance.choice(stores)
        opened = datetime.fromisoformat(store["opened_at"])
        when = max(opened, start) + timedelta(minutes=chance.randrange(0, 365 * 24 * 60))
        chosen = [chance.choice(products) for _ in range(chance.randint(1, 3))]
        subtotal = sum(int(product["price"]) for product in chosen)
        tax = round(subtotal * float(store["tax_rate"]))
        order_id = f"o{number:06d}"
        orders.append(
            [order_id, chance.choice(customers), when.isoformat(), store["id"], subtotal, tax,
             subtotal + tax]
        )  # fmt: skip
        items += [[f"i{len(items) + 1 + i:07d}", order_id, p["sku"]] for i, p in enumerate(chosen)]
    header = ["id", "customer", "ordered_at", "store_id", "subtotal", "tax_paid", "order_total"]
    for name, head, body in (
        ("raw_orders.csv", header, orders),
        ("raw_items.csv", ["id", "order_id", "sku"], items),
    ):
        with (data / name).open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(head)
            writer.writerows(body)
    print(f"{len(orders)} orders, {len(items)} items")


if __name__ == "__main__":
    main()
