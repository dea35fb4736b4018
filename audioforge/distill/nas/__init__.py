"""``audioforge nas``: distilled sets as a proxy for architecture search (DDFAD, section 5.2)."""
