package sheetlogstack

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultsAreValid(t *testing.T) {
	p, err := Props{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if p.Dev || p.AllowAnonymous || p.Stream.DisableBisect || p.DisableBucketAccessLogs {
		t.Errorf("a relaxing flag is on by default: %+v", p)
	}
	if p.Endpoint != EndpointHTTPAPI || p.AssetDir != DefaultAssetDir || p.Architecture != "arm64" {
		t.Errorf("defaults %+v", p)
	}
	if p.Stream.RetryAttempts != DefaultRetryAttempts || p.Stream.MaxRecordAge != DefaultMaxRecordAge {
		t.Errorf("stream defaults %+v", p.Stream)
	}
}

func TestInvalidProps(t *testing.T) {
	for name, c := range map[string]struct {
		p    Props
		want string
	}{
		"jwt issuer only":     {Props{JWTIssuer: "https://x.example.com"}, "both an issuer and an audience"},
		"jwt audience only":   {Props{JWTAudience: []string{"a"}}, "both an issuer and an audience"},
		"jwt over http":       {Props{JWTIssuer: "http://x.example.com", JWTAudience: []string{"a"}}, "https URL"},
		"jwt and anonymous":   {Props{JWTIssuer: "https://x.example.com", JWTAudience: []string{"a"}, AllowAnonymous: true}, "contradict"},
		"jwt on function URL": {Props{JWTIssuer: "https://x.example.com", JWTAudience: []string{"a"}, Endpoint: EndpointFunctionURL}, "function URL cannot"},
		"endpoint":            {Props{Endpoint: "rest"}, "endpoint"},
		"architecture":        {Props{Architecture: "arm"}, "architecture"},
		"log level":           {Props{LogLevel: "verbose"}, "log level"},
		"retention":           {Props{LogRetentionDays: 10}, "log retention"},
		"memory":              {Props{API: FunctionSettings{MemoryMiB: 64}}, "api memory"},
		"api timeout":         {Props{API: FunctionSettings{Timeout: time.Minute}}, "30s"},
		"fractional timeout":  {Props{Workflow: FunctionSettings{Timeout: 1500 * time.Millisecond}}, "workflow timeout"},
		"huge concurrency":    {Props{Sweeper: FunctionSettings{ReservedConcurrency: 5000}}, "sweeper reserved concurrency"},
		"short grace":         {Props{SweepGrace: time.Second}, "sweep grace"},
		"sub-minute rate":     {Props{SweepRate: 90 * time.Second}, "sweep rate"},
		"record age":          {Props{Stream: StreamSettings{MaxRecordAge: 8 * 24 * time.Hour}}, "max record age"},
		"parallelization":     {Props{Stream: StreamSettings{ParallelizationFactor: 11}}, "parallelization"},
		"cors path":           {Props{CORSOrigins: []string{"https://app.example.com/x"}}, "CORS origin"},
		"cors trailing slash": {Props{CORSOrigins: []string{"https://app.example.com/"}}, "CORS origin"},
		"alarm topic":         {Props{AlarmTopicARN: "ops"}, "not an ARN"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.p.withDefaults()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

// A missing zip fails before anything is created, with the fix in the
// message.
func TestMissingZip(t *testing.T) {
	_, err := New(nil, "x", Props{AssetDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "make lambdas") || !strings.Contains(err.Error(), "api-lambda.zip") {
		t.Errorf("error %v, want one naming the zip and `make lambdas`", err)
	}
}

func TestPropsFromContext(t *testing.T) {
	app := newApp(t, map[string]string{
		CtxDev: "true", CtxLocalStack: "true", CtxCORSOrigins: " https://a.example.com , https://b.example.com ",
		CtxJWTAudience: "x,y", CtxSnapshotInterval: "250", CtxSweepGrace: "20m", CtxLogLevel: "debug",
		CtxStackName: "Other",
	})
	p, err := PropsFromContext(app.Node())
	if err != nil {
		t.Fatal(err)
	}
	if !p.Dev || p.Stream.DisableBisect || p.Endpoint != EndpointFunctionURL || p.AllowAnonymous {
		t.Errorf("flags %+v", p)
	}
	if strings.Join(p.CORSOrigins, "|") != "https://a.example.com|https://b.example.com" || strings.Join(p.JWTAudience, "|") != "x|y" {
		t.Errorf("lists %q %q", p.CORSOrigins, p.JWTAudience)
	}
	if p.SnapshotInterval != 250 || p.SweepGrace != 20*time.Minute || p.LogLevel != "debug" {
		t.Errorf("values %+v", p)
	}
	if StackName(app.Node()) != "Other" {
		t.Errorf("stack name %q", StackName(app.Node()))
	}

	// localstack keeps an explicit endpoint.
	p, err = PropsFromContext(newApp(t, map[string]string{CtxLocalStack: "true", CtxEndpoint: "httpapi"}).Node())
	if err != nil || p.Endpoint != EndpointHTTPAPI {
		t.Errorf("localstack + endpoint=httpapi: %v %v", p.Endpoint, err)
	}

	for _, bad := range []map[string]string{
		{CtxDev: "yes please"},
		{CtxSweepGrace: "soon"},
		{CtxSnapshotInterval: "-3"},
	} {
		if _, err := PropsFromContext(newApp(t, bad).Node()); err == nil {
			t.Errorf("context %v: no error", bad)
		}
	}
	if StackName(newApp(t, nil).Node()) != DefaultStackName {
		t.Errorf("default stack name")
	}
}
