"""The GEFU benchmark: enhance, then test directly with frozen normal-light models."""
