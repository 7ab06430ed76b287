package postgres

// BatchStats reports how many batches the store's batcher ran and how
// many ops they held, for the benchmarks of package postgres_test.
func BatchStats(db *DB) (batches, ops int64) { return db.b.batches.Load(), db.b.ops.Load() }
