// Package moto gives tests (and the end-to-end harness) AWS endpoints for
// DynamoDB, DynamoDB Streams and S3: moto's server, installed by the
// Makefile into the project's .venv and started here once per test binary
// on a free loopback port, or, when the standard endpoint variables are
// set, whatever they name (LocalStack, real AWS), with no emulator started.
//
// Endpoint selection, in order:
//
//   - AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB,
//     AWS_ENDPOINT_URL_DYNAMODB_STREAMS (also accepted spelled
//     AWS_ENDPOINT_URL_DYNAMODBSTREAMS) or AWS_ENDPOINT_URL_S3 set, or
//     SHEETLOG_AWS_EXTERNAL=1: the SDK's default configuration chain
//     (credentials, region and endpoints from the environment); moto is not
//     started.
//   - Otherwise moto: the server binary is $MOTO_SERVER, else
//     <module root>/.venv/bin/moto_server (`make moto` installs it). It is
//     started through serve_serialized.py with the same Python, which
//     serialises requests: see that file for why the stock server is not
//     safe for racing writers.
//
// When moto is needed but not installed, tests skip with a loud message,
// except in CI (CI=true), where they fail: CI must never pass by skipping.
package moto

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Region and credentials used against the emulator. moto accepts any.
const (
	Region    = "us-east-1"
	AccessKey = "test"
	SecretKey = "test"
)

// endpointEnv are the variables that point the tests at an external
// endpoint instead of a moto server started here.
var endpointEnv = []string{
	"AWS_ENDPOINT_URL",
	"AWS_ENDPOINT_URL_DYNAMODB",
	"AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
	"AWS_ENDPOINT_URL_DYNAMODBSTREAMS",
	"AWS_ENDPOINT_URL_S3",
	"SHEETLOG_AWS_EXTERNAL",
}

// External reports whether endpoints come from the environment (no moto
// started), and which variable said so.
func External() (string, bool) {
	for _, k := range endpointEnv {
		if os.Getenv(k) != "" {
			return k, true
		}
	}
	return "", false
}

// Env is what a test gets: an SDK configuration and whether it points at
// the moto server started by this package.
type Env struct {
	Config aws.Config
	// URL is the moto server's base URL; empty for external endpoints.
	URL string
}

var (
	mu       sync.Mutex
	shared   *Server
	startErr error
	started  bool
	warned   atomic.Bool
)

// Main runs a package's tests and stops the emulator afterwards. Use it in
// TestMain:
//
//	func TestMain(m *testing.M) { moto.Main(m) }
//
// Without it the server still dies with the test binary (on Linux it is
// bound to its parent's death), but Main stops it cleanly.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the shared server, if one was started.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if shared != nil {
		shared.Stop()
		shared = nil
	}
}

// Get returns the test environment, starting the shared moto server on
// first use. It skips the test (outside CI) or fails it (CI=true) when moto
// is needed and missing.
func Get(tb testing.TB) Env {
	tb.Helper()
	if _, ext := External(); ext {
		cfg, err := ExternalConfig(context.Background())
		if err != nil {
			tb.Fatalf("moto: loading the AWS configuration for external endpoints: %v", err)
		}
		return Env{Config: cfg}
	}
	srv, err := sharedServer()
	if err != nil {
		var nf *NotInstalledError
		if errors.As(err, &nf) && os.Getenv("CI") != "true" {
			msg := "SKIPPED: " + nf.Error()
			if warned.CompareAndSwap(false, true) {
				fmt.Fprintf(os.Stderr, "\n%s\n%s\n%s\n\n", banner, msg, banner)
			}
			tb.Skip(msg)
		}
		tb.Fatalf("moto: %v", err)
	}
	return Env{Config: EmulatorConfig(srv.URL), URL: srv.URL}
}

const banner = "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"

func sharedServer() (*Server, error) {
	mu.Lock()
	defer mu.Unlock()
	if started {
		if shared == nil && startErr == nil {
			return nil, errors.New("the shared server was stopped")
		}
		return shared, startErr
	}
	started = true
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	shared, startErr = Start(ctx, "")
	return shared, startErr
}

// EmulatorConfig is the SDK configuration for a moto server at url: dummy
// static credentials, a fixed region, and url as the base endpoint of every
// service. It reads nothing from the environment or from shared config
// files, so a developer's real AWS profile is never used by accident; the
// service clients fill in their own defaults (HTTP client, retryer).
func EmulatorConfig(url string) aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
		BaseEndpoint: aws.String(url),
	}
}

// ExternalConfig is the SDK's default configuration (environment, shared
// files), used when endpoints come from the environment.
func ExternalConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return cfg, err
	}
	if cfg.Region == "" {
		cfg.Region = Region
	}
	return cfg, nil
}

// DynamoDB returns a DynamoDB client for the test environment.
func (e Env) DynamoDB(optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	return dynamodb.NewFromConfig(e.Config, optFns...)
}

// Streams returns a DynamoDB Streams client for the test environment.
func (e Env) Streams(optFns ...func(*dynamodbstreams.Options)) *dynamodbstreams.Client {
	fns := optFns
	// The SDK spells the service variable AWS_ENDPOINT_URL_DYNAMODB_STREAMS;
	// accept the unseparated spelling too.
	if u := os.Getenv("AWS_ENDPOINT_URL_DYNAMODBSTREAMS"); u != "" && os.Getenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS") == "" && e.URL == "" {
		fns = append([]func(*dynamodbstreams.Options){func(o *dynamodbstreams.Options) { o.BaseEndpoint = aws.String(u) }}, optFns...)
	}
	return dynamodbstreams.NewFromConfig(e.Config, fns...)
}

// S3 returns an S3 client for the test environment. Requests use path-style
// addressing whenever the endpoint is overridden (emulators serve buckets
// as paths, not as DNS names).
func (e Env) S3(optFns ...func(*s3.Options)) *s3.Client {
	pathStyle := e.URL != "" || os.Getenv("AWS_ENDPOINT_URL") != "" || os.Getenv("AWS_ENDPOINT_URL_S3") != ""
	fns := append([]func(*s3.Options){func(o *s3.Options) { o.UsePathStyle = pathStyle }}, optFns...)
	return s3.NewFromConfig(e.Config, fns...)
}

var nameSeq atomic.Uint64

// Name returns a name for a table or bucket that is unique to this test
// run: lower case letters, digits and dashes, at most 63 characters, so it
// is valid for both DynamoDB tables and S3 buckets.
func Name(prefix string) string {
	n := nameSeq.Add(1)
	p := strings.ToLower(prefix)
	p = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, p)
	suffix := fmt.Sprintf("-%d-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9, n)
	if len(p)+len(suffix) > 63 {
		p = p[:63-len(suffix)]
	}
	return strings.Trim(p, "-") + suffix
}

// NotInstalledError says the moto server binary was not found.
type NotInstalledError struct{ Looked []string }

func (e *NotInstalledError) Error() string {
	return fmt.Sprintf("moto not installed (looked for %s): run `make test` or `make moto` "+
		"(installs moto[server] into .venv), or set MOTO_SERVER, or point AWS_ENDPOINT_URL_* at another endpoint",
		strings.Join(e.Looked, ", "))
}

// Find returns the moto_server executable: $MOTO_SERVER, or the module
// root's .venv/bin/moto_server.
func Find() (string, error) {
	var looked []string
	if p := os.Getenv("MOTO_SERVER"); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		looked = append(looked, "$MOTO_SERVER="+p)
		return "", &NotInstalledError{Looked: looked}
	}
	root, err := moduleRoot()
	if err == nil {
		p := filepath.Join(root, ".venv", "bin", "moto_server")
		if isExecutable(p) {
			return p, nil
		}
		looked = append(looked, p)
	} else {
		looked = append(looked, "<module root>/.venv/bin/moto_server ("+err.Error()+")")
	}
	return "", &NotInstalledError{Looked: looked}
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// moduleRoot walks up from the working directory (a package directory
// under go test) to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
