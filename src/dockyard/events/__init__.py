"""Domain event names and the transactional outbox that records them."""
