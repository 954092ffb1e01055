"""The on-disk record layer every store shares: a JSON-only diskcache `Disk` and versioned records."""
