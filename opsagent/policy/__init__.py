"""Policy: intents, rules, limits and the pure decision function."""
