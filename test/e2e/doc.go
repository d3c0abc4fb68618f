// Package e2e is sheetlog's end-to-end suite: it drives a running
// deployment through its HTTP API only, so the same tests run against the
// local Lambda harness (`make e2e`), LocalStack (`make localstack-e2e`), a
// real AWS deployment, or the single-machine server.
//
// Environment:
//
//	SHEETLOG_E2E_BASE_URL     base URL of the API (required; without it
//	                          every test is skipped with a message)
//	SHEETLOG_E2E_HARNESS_URL  control endpoint of the local harness; the
//	                          tests that need its powers (fault injection,
//	                          dropped stream records, the dead-letter queue)
//	                          are skipped without it
//	SHEETLOG_E2E_TOKEN        bearer token (the single-machine server with
//	                          a token configured)
//	SHEETLOG_E2E_JWT_KEY      a JWT deployment's signing key (PEM), with
//	SHEETLOG_E2E_JWT_ISSUER   the issuer and audience its authorizer
//	SHEETLOG_E2E_JWT_AUDIENCE accepts: TestSheetScopes signs tokens of
//	                          every scope with it (`make e2e-jwt`; skipped
//	                          without it). SHEETLOG_E2E_JWT_TENANT_CLAIM
//	                          names the tenant claim (default tenant)
//	SHEETLOG_E2E_SIGV4=1      sign requests with SigV4 for an HTTP API
//	                          with IAM authorization, with the credentials
//	                          of AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
//	                          AWS_SESSION_TOKEN and the region of
//	                          AWS_REGION (service "execute-api")
//	SHEETLOG_E2E_CELLS        cells appended per sheet (default 1000)
//	SHEETLOG_E2E_SHEETS       sheets written concurrently (default 3)
//	SHEETLOG_E2E_WAIT         how long to wait for workflows (default 3m)
//
// Sheet ids carry a per-run prefix, so runs against a shared deployment do
// not collide.
package e2e
