"""Cost model and replay of search strategies on recorded fine-tuning results."""
