"""The Hub API's request and response shapes: ``common`` (timestamps, text patterns, error responses, the list
envelope), ``accounts``, ``repositories`` and ``webhooks``; route modules keep the shapes only they use."""
