"""Domain events: the transactional outbox that records them (``outbox``), the audit log (``audit``) and the event
bus that hands outbox events to the subscribers the composition root registers (``bus``)."""
