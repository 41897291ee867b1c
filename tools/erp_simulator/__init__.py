"""A simulated ERP on RabbitMQ, written with pika from ``deploy/asyncapi.yaml`` alone.

``python -m tools.erp_simulator --amqp-uri URI --events N --seed S`` publishes a realistic
stream of N ERP events (item master, price lists, credit limits, orders, shipments, invoices
and corrections, payments with allocations), optionally with ``--duplicates`` and
``--out-of-order`` deliveries, and writes what the stream implies (each invoice's outstanding
amount, each customer's receivable total, each order's status) to a JSON file.
``python -m tools.erp_simulator respond --amqp-uri URI`` answers the CRM's order requests.
The topology must be declared first (``make topology``).
"""
