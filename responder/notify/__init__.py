"""GOV.UK Notify: residents hear back by email or text message.

``personalisation`` builds each message's fields; ``sender`` hands outbox rows of kind
``notify`` to Notify through its Python client, in worker threads. Free of Teams.
"""
