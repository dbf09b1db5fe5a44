"""Benchmarks (``refit-ros bench``): timing code, printed as JSON by the commands."""
