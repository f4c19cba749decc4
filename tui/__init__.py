"""Package placeholder; filled by later commits."""
