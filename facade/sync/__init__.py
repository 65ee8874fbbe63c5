"""The toolkit's side of the data sync: queues from routing.yaml's ``sync:`` block, the
dead-letter queues, verification and status (``strangler sync …``)."""
