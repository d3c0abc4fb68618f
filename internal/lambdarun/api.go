package lambdarun

import (
	"log/slog"
	"net/http"

	"github.com/sheetlog/sheetlog/pkg/api"
	"github.com/sheetlog/sheetlog/pkg/feed"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
	"github.com/sheetlog/sheetlog/pkg/webui"
	"github.com/sheetlog/sheetlog/pkg/workers"
)

// MaxInlineBlobBytes is the largest blob the API function returns in its
// reply. A Lambda reply is at most 6 MB
// (https://docs.aws.amazon.com/lambda/latest/dg/API_Invoke.html), and a
// binary body travels base64-encoded in it (4/3 of its size): 4 MiB of
// blob is 5.6 MiB of reply, with room for the headers. A larger blob is
// answered with a redirect to a short-lived presigned S3 URL.
const MaxInlineBlobBytes = 4 << 20

// APIHandler is the API Lambda's http.Handler: pkg/api, the handler the
// single-machine server serves, over s, with host engines whose worker
// host is implicit (the table's stream forwards every entry written with
// pending to the workflow Lambda, so the engine posts nothing), behind the
// web page (pkg/webui), as in the single-machine server.
//
// The change feed (GET log?wait=N) polls: other invocations' appends
// cannot be heard, so a waiting request reads the log again with backoff
// (feed.Poller's defaults: at about 0, 0.1, 0.3 and 0.7 s, then about
// once a second), within the invocation's deadline. While nothing is
// appended each read is one strongly consistent GetItem of the sheet's
// head item.
func APIHandler(s Stores, c Config, log *slog.Logger) (http.Handler, error) {
	engines := EngineCache(s, workers.ImplicitHost{},
		spreadsheet.Options{SnapshotInterval: c.SnapshotInterval, Logger: log}, c, log)
	h, err := api.New(api.Config{
		Logs:        s.Logs,
		Blobs:       s.Blobs,
		Engines:     engines,
		CORSOrigins: c.CORSOrigins,
		Auth:        APIAuthenticator(c),
		Feed:        feed.Poller{},
		Health:      HealthCheck(s),
		Logger:      log,
		// Larger blobs would not fit in the function's reply.
		MaxInlineBlobBytes: MaxInlineBlobBytes,
	})
	if err != nil {
		return nil, err
	}
	return webui.Handler(h), nil
}
