// Package awscost counts what AWS calls cost: an SDK middleware counts the
// requests of every operation (each HTTP attempt) and, for DynamoDB, asks
// for and adds up the consumed capacity the service reports; a Table
// prints one row per measured application operation. The cost benchmarks
// (make bench-aws) of the DynamoDB and S3 adapters share it.
//
//	c := awscost.New()
//	ddb := dynamodb.NewFromConfig(cfg, c.DynamoDBOption)
//	s3c := s3.NewFromConfig(cfg, c.S3Option)
//	before := c.Snapshot()
//	... one application operation ...
//	row := awscost.Row{Name: "append", Usage: c.Since(before)}
package awscost

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
)

// Usage is what a span of calls cost, by operation name ("GetItem",
// "PutObject", ...).
type Usage struct {
	// Requests counts HTTP requests (attempts) per operation.
	Requests map[string]int
	// Capacity is the capacity units the service reported, per operation
	// (DynamoDB with ReturnConsumedCapacity; absent when it reported none).
	Capacity map[string]float64
}

// Total is the number of requests.
func (u Usage) Total() int {
	n := 0
	for _, c := range u.Requests {
		n += c
	}
	return n
}

// Of sums the requests of the named operations.
func (u Usage) Of(ops ...string) int {
	n := 0
	for _, op := range ops {
		n += u.Requests[op]
	}
	return n
}

// Counter counts requests. It is safe for concurrent use.
type Counter struct {
	mu       sync.Mutex
	requests map[string]int
	capacity map[string]float64
}

// New returns an empty counter.
func New() *Counter {
	return &Counter{requests: map[string]int{}, capacity: map[string]float64{}}
}

// DynamoDBOption installs the counter on a DynamoDB client (an option of
// dynamodb.NewFromConfig or of a single call). It also sets
// ReturnConsumedCapacity=TOTAL on every request that takes it.
func (c *Counter) DynamoDBOption(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, c.register, c.registerCapacity)
}

// S3Option installs the counter on an S3 client.
func (c *Counter) S3Option(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, c.register)
}

// Register adds the request counter to any SDK client's middleware stack
// (append it to the client's Options.APIOptions).
func (c *Counter) Register(stack *middleware.Stack) error { return c.register(stack) }

func (c *Counter) register(stack *middleware.Stack) error {
	// The Deserialize step runs once per HTTP attempt (retries included).
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("awscost.count",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			c.mu.Lock()
			c.requests[awsmiddleware.GetOperationName(ctx)]++
			c.mu.Unlock()
			return next.HandleDeserialize(ctx, in)
		}), middleware.After)
}

func (c *Counter) registerCapacity(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("awscost.capacity",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			askCapacity(in.Parameters)
			out, md, err := next.HandleInitialize(ctx, in)
			if err == nil {
				if cu, ok := reportedCapacity(out.Result); ok {
					c.mu.Lock()
					c.capacity[awsmiddleware.GetOperationName(ctx)] += cu
					c.mu.Unlock()
				}
			}
			return out, md, err
		}), middleware.After)
}

func askCapacity(params any) {
	const total = types.ReturnConsumedCapacityTotal
	switch in := params.(type) {
	case *dynamodb.GetItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.PutItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.UpdateItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.DeleteItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.QueryInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.ScanInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.TransactWriteItemsInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.TransactGetItemsInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.BatchWriteItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.BatchGetItemInput:
		in.ReturnConsumedCapacity = total
	}
}

func reportedCapacity(result any) (float64, bool) {
	one := func(c *types.ConsumedCapacity) (float64, bool) {
		if c == nil || c.CapacityUnits == nil {
			return 0, false
		}
		return aws.ToFloat64(c.CapacityUnits), true
	}
	many := func(cs []types.ConsumedCapacity) (float64, bool) {
		sum, ok := 0.0, false
		for i := range cs {
			if v, k := one(&cs[i]); k {
				sum, ok = sum+v, true
			}
		}
		return sum, ok
	}
	switch out := result.(type) {
	case *dynamodb.GetItemOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.PutItemOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.UpdateItemOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.DeleteItemOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.QueryOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.ScanOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.TransactWriteItemsOutput:
		return many(out.ConsumedCapacity)
	case *dynamodb.TransactGetItemsOutput:
		return many(out.ConsumedCapacity)
	case *dynamodb.BatchWriteItemOutput:
		return many(out.ConsumedCapacity)
	case *dynamodb.BatchGetItemOutput:
		return many(out.ConsumedCapacity)
	}
	return 0, false
}

// Snapshot returns the counts so far.
func (c *Counter) Snapshot() Usage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Usage{Requests: maps.Clone(c.requests), Capacity: maps.Clone(c.capacity)}
}

// Since returns what was counted after before was taken.
func (c *Counter) Since(before Usage) Usage {
	now := c.Snapshot()
	u := Usage{Requests: map[string]int{}, Capacity: map[string]float64{}}
	for k, v := range now.Requests {
		if d := v - before.Requests[k]; d != 0 {
			u.Requests[k] = d
		}
	}
	for k, v := range now.Capacity {
		if d := v - before.Capacity[k]; d != 0 {
			u.Capacity[k] = d
		}
	}
	return u
}

// Measure runs f and returns what it cost.
func (c *Counter) Measure(f func()) Usage {
	before := c.Snapshot()
	f()
	return c.Since(before)
}

// Row is one line of a cost table: one application operation.
type Row struct {
	Name  string
	Usage Usage
	// Writes is how many of the requests write (the table shows it; the
	// caller knows which of its operations write).
	Writes int
	// RCU and WCU are capacity units worked out from item sizes by
	// DynamoDB's published rules, for when the service (an emulator)
	// reports none or made-up figures. Zero prints as "-".
	RCU, WCU float64
	Note     string
}

// Table is a list of rows.
type Table struct {
	Title string
	Rows  []Row
}

// Add appends a row.
func (t *Table) Add(r Row) { t.Rows = append(t.Rows, r) }

// Print writes the table, aligned, as plain text.
func (t *Table) Print(w io.Writer) {
	if t.Title != "" {
		fmt.Fprintf(w, "%s\n", t.Title)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "operation\trequests\twrites\tby kind\tRCU (computed)\tWCU (computed)\tCU reported\tnote")
	for _, r := range t.Rows {
		var kinds []string
		for _, op := range slices.Sorted(maps.Keys(r.Usage.Requests)) {
			kinds = append(kinds, fmt.Sprintf("%s×%d", op, r.Usage.Requests[op]))
		}
		reported := "-"
		if len(r.Usage.Capacity) > 0 {
			sum := 0.0
			for _, v := range r.Usage.Capacity {
				sum += v
			}
			reported = fmt.Sprintf("%g", sum)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Usage.Total(), r.Writes, strings.Join(kinds, " "),
			units(r.RCU), units(r.WCU), reported, r.Note)
	}
	tw.Flush()
}

func units(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%g", v)
}
