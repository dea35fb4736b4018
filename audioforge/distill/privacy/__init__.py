"""``audioforge privacy``: does a distilled set keep its source clips private? (DDFAD section 5.3
claims so without a test.)"""
