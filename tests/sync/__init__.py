"""The data sync: outbox, relay, queues, consumers."""
