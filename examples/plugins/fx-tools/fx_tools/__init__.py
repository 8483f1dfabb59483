"""fx-tools, the scenario's example plugin: the expression function fx(amount, currency)."""
