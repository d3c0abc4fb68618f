// Package eventlogtest is the conformance suite of eventlog.EventLog,
// written once and run against every implementation:
//
//	func TestConformance(t *testing.T) {
//		eventlogtest.Run(t, func(t *testing.T) eventlog.EventLog {
//			return newEmptyLog(t) // e.g. a new sheet in a shared table
//		}, eventlogtest.PageLimits(100, 1<<20))
//	}
//
// Run covers every rule of the event log contract with named example
// tests (EmptyLog, Append, AppendConflicts, AppendValidation,
// BodyRoundTrip, AppendWithMetadata, AppendBatch, Metadata, Truncate,
// Query, Snapshots, LastSnapshot, Context, LargeEntries), then a race of
// concurrent appenders (ConcurrentAppenders), batches racing single
// appends (BatchRace), readers watching batches land (BatchReaders), a
// linearizability check of concurrent histories with porcupine
// (Linearizability) and a model-based property test with rapid
// (Property). The last two use the same small sequential model of the
// contract, in which a batch append is one operation. Options scale the
// heavy tests down for slow backends (Light, Appenders, Batches, History,
// PropertySteps, PagingEntries), declare page bounds to check
// (PageLimits), and leave out what an implementation does not serve by
// design (Skip: the HTTP thin client takes only spreadsheet entries). RunStore checks an eventlog.Store, including its Pending
// listing when it has one.
//
// The suite is itself tested: mutants_test.go runs it against 26 broken
// logs (among them a batch that lands partially, one visible half-written,
// one that checks the conflict for its first entry only, one that loses
// pending) and asserts which subtest catches each.
//
// When the linearizability check fails, the history is written as an HTML
// visualization to a temporary file whose name is logged. A failing
// property test prints the steps and the model, and the rapid seed to
// replay it (-rapid.seed); -rapid.checks sets how many sequences it tries.
//
// # Readings of the contract
//
// Where event-log.md leaves room, the suite takes the strictest reading:
//
//   - Every call is atomic and linearizable. In particular a Query page
//     (its resolved start, its entries with their metadata, and
//     lastSnapshot) shows the log at one instant, and AddEntry's
//     lastSnapshot describes the log at the instant of the append.
//   - AddEntry's lastSnapshot describes the log after the append: an
//     entry appended with a snapshot is itself the newest snapshot.
//   - lastSnapshot compares sequence ids only, as the contract says
//     ("whose id differs"). A caller passing known=0 is therefore not told
//     about a snapshot at entry 0 (it cannot be told apart from a caller
//     that knows that snapshot), but is told about a snapshot anywhere
//     else; a new blob id at the known id is not reported; a known id
//     newer than the log's newest snapshot (say, after that snapshot was
//     cleared) is reported. A log with no snapshot (none ever, all
//     cleared, or all truncated away) never reports one, whatever known
//     is. lastSnapshot is the same whatever the page holds, including an
//     empty page.
//   - Malformed requests fail with ValidationError before any check
//     against the log: a bad body at a wrong id is a ValidationError, not
//     a ConflictError, and an update setting a field to "" is a
//     ValidationError even for an id outside the log. So is a batch of 0
//     or more than eventlog.MaxBatch entries, one with a bad entry
//     anywhere, or one with pending on two entries.
//   - A batch (AddEntries) is one atomic step: a conflict for it is
//     decided by its first id alone (any other first id is a
//     ConflictError, whether or not the batch would cover the next id),
//     its lastSnapshot describes the log after its last entry, no reader
//     ever sees some of its entries without the others (a page that
//     reaches the end of the log ends with a batch's last entry), and a
//     batch that failed with a StorageError is all in the log or not at
//     all.
//   - SetMetadata checks the range before the IfPending condition: a
//     conditional update of an id outside [start, next) is a RangeError,
//     not "not applied". A conditional update that does not apply reports
//     false and changes nothing; an update that keeps every field applies
//     (true) and changes nothing.
//   - A numeric query start is checked whatever the end: Query(next+1,
//     0) is a RangeError. An empty result is exactly the page {Start:
//     start, End: start, Complete: true} with no entries. Complete is true
//     exactly when End reached the (clamped) end. A page that is not
//     complete holds at least one entry, so paging always progresses.
//   - Truncate at the first id is a successful no-op, also on an empty
//     log (Truncate(0) of a new log). After truncation, an append at an id
//     below the first is a ConflictError (the contract's "any other id"),
//     while SetMetadata and numeric queries there are RangeErrors.
//   - Bodies round-trip byte for byte, not merely as equal JSON:
//     whitespace (inside and around the object), member order, duplicate
//     members, number spelling and string escapes are kept. The log never
//     aliases caller buffers, in either direction.
//   - A call with a context that is already done fails, with an error for
//     which errors.Is(err, ctx.Err()) holds (the context's error wrapped,
//     or a StorageError wrapping it), and writes nothing, even when the
//     backend could have completed without waiting.
//   - A StorageError is the only error that may leave the outcome of a
//     write unknown: the concurrent tests accept that such a write did or
//     did not happen (never half), and the linearizability check lets it
//     take effect at any time after its call. Any other failure is
//     definite.
package eventlogtest
