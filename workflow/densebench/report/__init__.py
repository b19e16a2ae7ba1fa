"""Report stage: the tidy table, published results, tables and figures."""
