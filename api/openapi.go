// Package api holds the OpenAPI 3.1 document of the thin-client HTTP API
// (openapi.yaml), embedded so that the handler in pkg/api serves exactly
// the file that its tests validate replies against.
package api

import _ "embed"

// OpenAPI is the document, YAML.
//
//go:embed openapi.yaml
var OpenAPI []byte
