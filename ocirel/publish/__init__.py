"""The publish side."""
