package lambdarun

import (
	"log/slog"
	"net/http"

	"github.com/sheetlog/sheetlog/pkg/api"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
	"github.com/sheetlog/sheetlog/pkg/webui"
	"github.com/sheetlog/sheetlog/pkg/workers"
)

// APIHandler is the API Lambda's http.Handler: pkg/api, the handler the
// single-machine server serves, over s, with host engines whose worker
// host is implicit (the table's stream forwards every entry written with
// pending to the workflow Lambda, so the engine posts nothing), behind the
// web page (pkg/webui), as in the single-machine server.
func APIHandler(s Stores, c Config, log *slog.Logger) (http.Handler, error) {
	engines := EngineCache(s, workers.ImplicitHost{},
		spreadsheet.Options{SnapshotInterval: c.SnapshotInterval, Logger: log}, c, log)
	h, err := api.New(api.Config{
		Logs:        s.Logs,
		Blobs:       s.Blobs,
		Engines:     engines,
		CORSOrigins: c.CORSOrigins,
		Auth:        APIAuthenticator(c),
		Health:      HealthCheck(s),
		Logger:      log,
	})
	if err != nil {
		return nil, err
	}
	return webui.Handler(h), nil
}
