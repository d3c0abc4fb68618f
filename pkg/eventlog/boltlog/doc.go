// Package boltlog is the embedded durable event log: every sheet's log in
// one bbolt file, for the single-machine server and the desktop build.
//
// # Why bbolt
//
// The alternative was SQLite through a pure-Go driver. bbolt wins here
// because what the log needs is exactly what it offers and nothing more:
//
//   - one file, held by one process (an exclusive flock), which is the
//     deployment: one server owns its data directory;
//   - ACID read-write transactions, with the data pages and then the meta
//     page fdatasync'd on every commit, and copy-on-write pages so that a
//     crash at any moment leaves the previous commit intact (no WAL to
//     replay, nothing torn);
//   - MVCC read transactions that never block the writer, so queries run
//     beside appends;
//   - keys kept in order in a B+tree, so "entries of sheet s from id a to
//     b" is a seek and a forward scan, and "newest snapshot below id x" is
//     a seek and one step back;
//   - pure Go with no cgo and no SQL layer: the whole store is a few
//     hundred lines over Get/Put/Delete/Cursor.
//
// SQLite's strengths (queries we do not need, a second reader process)
// cost a driver, a schema and a translation layer, and its pure-Go ports
// are large transpiled code bases.
//
// # Layout
//
// One keyspace, four top-level buckets. Keys of the last three are the
// sheet id, a 0x00 byte (which no sheet id contains, so no sheet's keys
// are a prefix range of another's) and the sequence id as 8 big-endian
// bytes, so each sheet's keys are contiguous and in id order:
//
//	heads      sheet            -> first id, next id, newest snapshot id
//	entries    sheet 0x00 id    -> record: metadata fields, then the body
//	pending    sheet 0x00 id    -> workflow   (only entries with pending set)
//	snapshots  sheet 0x00 id    -> 1          (only entries with snapshot set)
//
// Every write updates the entry, its head and both indexes in one
// transaction, so they always agree (Verify checks that they do). The head
// makes an append's conflict check and lastSnapshot O(1) lookups; the
// snapshot index makes FromSnapshot O(log n) even after the newest
// snapshot is cleared; the pending index lets Pending list the workflows
// to re-send at start-up without reading a single entry.
//
// # Durability and group commit
//
// An append is acknowledged only after the transaction that holds it has
// been committed, fsync included: the store never sets bbolt's NoSync. One
// fsync per append would bound throughput by the disk's sync latency, so
// every write (AddEntry, AddEntries, SetMetadata, Truncate) goes through a
// commit queue: one goroutine takes every request waiting, applies them in
// order inside one read-write transaction and commits once, then answers
// them all. A batch of entries (AddEntries) is one request: it is applied
// whole or not at all inside its transaction, so it is durable, and
// visible, all at once. While it commits, new requests queue up for the next round. There
// is no timer: a lone writer pays one fsync, and under load a batch holds
// whatever arrived during the previous fsync (bounded by
// Options.MaxBatchOps and MaxBatchBytes).
//
// bbolt's own DB.Batch was not used: it waits up to MaxBatchDelay (10 ms
// by default) to fill a batch, which lands straight on the p99, and it
// treats any error returned by one call as a reason to roll back and
// re-run the whole batch. Here a request's contract outcome
// (ConflictError, RangeError, a conditional update that does not apply)
// is decided before it changes anything, so it is simply recorded and the
// transaction goes on with the next request: one appender losing a race
// never costs the others a retry. Only an unexpected bbolt error while
// writing aborts the transaction; the batch is then re-run one request
// per transaction, so only the request that fails gets the error.
//
// Every request's effect becomes visible, and durable, at its batch's
// commit, which lies between its call and its reply: the log is
// linearizable. Queries are bbolt read transactions and see the last
// commit.
//
// # Cancellation
//
// Every call checks its context first and fails with a StorageError
// wrapping ctx.Err() without touching the file. A write whose context is
// cancelled while it waits in the queue is withdrawn if the committer has
// not taken it yet (the caller gets the context error, and the write is
// never applied). Once the committer has taken it, its outcome is decided
// by a commit already under way, so the caller waits for that commit (one
// transaction, not the whole queue) and reports what really happened:
// success if it was committed. An error caused by cancellation therefore
// always means "not written".
//
// A StorageError from a failed commit (the disk refused a write or an
// fsync) means the outcome is unknown: the data may be on disk or not.
// After such a failure the store refuses every further call until it is
// reopened, because bbolt's in-memory state may no longer match the file
// (an fsync error can lose pages the kernel has already dropped).
//
// # Processes
//
// bbolt locks the file for one process. Open waits up to
// Options.LockTimeout for another process to release it and then fails
// with a StorageError saying the file is locked.
package boltlog
