package fsblob

import "log/slog"

// DefaultPageSize is the Query page size when Options.PageSize is zero.
const DefaultPageSize = 1000

// Options configures a Store.
type Options struct {
	// PageSize bounds the number of entries (blobs plus directories) in
	// one Query page. Zero or negative means DefaultPageSize.
	PageSize int
	// NoSync skips every fsync. Writes stay atomic for a crash of the
	// process (rename is atomic), but not for a crash of the machine,
	// which may lose or empty recent blobs. For tests only.
	NoSync bool
	// Logger receives the store's few messages (stale temporary files
	// removed at Open). Nil means slog.Default().
	Logger *slog.Logger
}
