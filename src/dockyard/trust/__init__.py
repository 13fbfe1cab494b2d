"""Trust: the keys a namespace trusts, trust policies, and the pull-time check that enforces them."""
