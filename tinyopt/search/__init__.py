"""tinyopt search: measured trials over structured pruning, sparsity, clustering, QAT and backends."""
