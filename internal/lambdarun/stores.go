package lambdarun

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	s3blob "github.com/sheetlog/sheetlog/pkg/blobstore/s3"
	"github.com/sheetlog/sheetlog/pkg/enginecache"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/eventlog/dynamo"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
	"github.com/sheetlog/sheetlog/pkg/workers"
)

// Stores are the event log and blob store of a deployment.
type Stores struct {
	Logs  eventlog.Store
	Blobs blobstore.Store
	// Dynamo is Logs with its concrete type (nil in tests over other
	// stores): the sweeper lists pending entries through it.
	Dynamo *dynamo.Store
	// Retire is the queue of delayed retention passes (nil: none
	// configured).
	Retire *RetireQueue
}

// AWSStores opens the DynamoDB event log and the S3 blob store named by
// c, with the SDK's default configuration chain (the function's role in
// Lambda; AWS_ENDPOINT_URL* and static keys under the emulator). The only
// request it sends is the read of the continuation token key (LoadTokenKey);
// the stores send theirs on first use.
func AWSStores(ctx context.Context, c Config, log *slog.Logger) (Stores, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return Stores{}, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if c.TokenKey, err = LoadTokenKey(ctx, cfg, c, log); err != nil {
		return Stores{}, err
	}
	return AWSStoresFromConfig(cfg, c, log)
}

// AWSStoresFromConfig is AWSStores with a given SDK configuration and
// c.TokenKey already loaded (nil: a key derived from the bucket name).
func AWSStoresFromConfig(cfg aws.Config, c Config, log *slog.Logger) (Stores, error) {
	db := dynamo.New(dynamodb.NewFromConfig(cfg), c.Table, dynamo.Options{Logger: log})
	blobs, err := s3blob.New(cfg, c.Bucket, s3blob.Options{UsePathStyle: c.S3PathStyle, TokenKey: c.TokenKey})
	if err != nil {
		return Stores{}, err
	}
	st := Stores{Logs: db, Blobs: blobs, Dynamo: db}
	if c.Retention.QueueURL != "" {
		st.Retire = NewRetireQueue(sqs.NewFromConfig(cfg), c.Retention.QueueURL, log)
	}
	return st, nil
}

// EngineCache is a bounded cache of engines over s, built with host as
// their worker host (workers.ImplicitHost{} on AWS: the stream forwards
// pending entries) and opts.
func EngineCache(s Stores, host workers.WorkerHost, opts spreadsheet.Options, c Config, log *slog.Logger) *enginecache.Cache {
	return enginecache.New(func(sheet string) (*spreadsheet.Engine, error) {
		l, err := s.Logs.Log(sheet)
		if err != nil {
			return nil, err
		}
		root, err := s.Blobs.Sheet(sheet)
		if err != nil {
			return nil, err
		}
		return spreadsheet.New(sheet, l, root, host, opts)
	}, enginecache.Options{
		MaxEngines: c.CacheEngines,
		MaxBytes:   c.CacheBytes,
		OnEvict: func(sheet string, e *spreadsheet.Engine) {
			log.Debug("engine evicted from the cache", "sheet", sheet, "bytes", e.Footprint())
		},
	})
}

// HealthCheck reads the head of a sheet nobody writes and lists its blob
// root: one DynamoDB and one S3 request, proving both are reachable with
// the function's permissions.
func HealthCheck(s Stores) func(ctx context.Context) error {
	const sheet = "_healthz"
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		l, err := s.Logs.Log(sheet)
		if err != nil {
			return err
		}
		if _, err := l.Query(ctx, eventlog.FromStart, eventlog.ToID(0), nil); err != nil {
			return fmt.Errorf("event log: %w", err)
		}
		root, err := s.Blobs.Sheet(sheet)
		if err != nil {
			return err
		}
		if _, err := root.Query(ctx, ""); err != nil {
			return fmt.Errorf("blob store: %w", err)
		}
		return nil
	}
}
