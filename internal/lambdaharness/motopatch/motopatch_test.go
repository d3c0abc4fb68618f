package motopatch_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/sheetlog/sheetlog/internal/lambdaharness/motopatch"
	"github.com/sheetlog/sheetlog/internal/moto"
	"github.com/sheetlog/sheetlog/pkg/eventlog/dynamo"
)

// start runs a moto server with the patch installed.
func start(t *testing.T) *moto.Server {
	t.Helper()
	if _, ext := moto.External(); ext {
		t.Skip("endpoints come from the environment: no moto to patch")
	}
	bin, err := moto.Find()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip("SKIPPED: ", err)
	}
	restore, err := motopatch.Install(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := moto.Start(ctx, bin)
	restore()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	if os.Getenv(motopatch.EnvFlag) != "" || strings.Contains(os.Getenv("PYTHONPATH"), "motopatch-") {
		t.Error("Install's restore left the environment changed")
	}
	return srv
}

// The module is what moto's Python loads when installed.
func TestLoaded(t *testing.T) {
	bin, err := moto.Find()
	if err != nil {
		t.Skip("SKIPPED: ", err)
	}
	restore, err := motopatch.Install(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer restore()
	py := filepath.Join(filepath.Dir(bin), "python3")
	out, err := exec.Command(py, "-c",
		"from moto.dynamodb.models import DynamoDBBackend as B; print(B.transact_write_items.__module__)").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "sitecustomize" {
		t.Fatalf("transact_write_items comes from %q (%v)", out, err)
	}
}

// A cancelled transaction leaves no trace (items or stream records), a
// committed one all of its writes, exactly as with moto's own rollback.
func TestRollback(t *testing.T) {
	srv := start(t)
	ctx := context.Background()
	cfg := moto.EmulatorConfig(srv.URL)
	db := dynamodb.NewFromConfig(cfg)
	table := moto.Name("patch")
	if err := dynamo.CreateTable(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	key := func(seq string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"sheet": &types.AttributeValueMemberS{Value: "s"}, "seq": &types.AttributeValueMemberN{Value: seq}}
	}
	item := func(seq, v string) map[string]types.AttributeValue {
		it := key(seq)
		it["v"] = &types.AttributeValueMemberS{Value: v}
		return it
	}
	get := func(seq string) map[string]types.AttributeValue {
		out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key(seq), ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		return out.Item
	}
	streamLen := func() int {
		d, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err != nil {
			t.Fatal(err)
		}
		sc := dynamodbstreams.NewFromConfig(cfg)
		arn := d.Table.LatestStreamArn
		desc, err := sc.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: arn})
		if err != nil {
			t.Fatal(err)
		}
		it, err := sc.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: arn,
			ShardId: desc.StreamDescription.Shards[0].ShardId, ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		out, err := sc.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it.ShardIterator})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Records)
	}
	transact := func(items ...types.TransactWriteItem) error {
		_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		return err
	}
	put := func(it map[string]types.AttributeValue, cond string) types.TransactWriteItem {
		p := &types.Put{TableName: aws.String(table), Item: it}
		if cond != "" {
			p.ConditionExpression = aws.String(cond)
		}
		return types.TransactWriteItem{Put: p}
	}
	failing := types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{TableName: aws.String(table), Key: key("99"),
		ConditionExpression: aws.String("attribute_exists(seq)")}}
	cancelled := func(err error) bool {
		var tc *types.TransactionCanceledException
		return errors.As(err, &tc)
	}

	if err := transact(put(item("1", "a"), "attribute_not_exists(seq)"), put(item("2", "b"), "")); err != nil {
		t.Fatal(err)
	}
	if get("1") == nil || get("2") == nil || streamLen() != 2 {
		t.Fatalf("committed transaction: items %v %v, %d stream records", get("1"), get("2"), streamLen())
	}
	// Overwrite, update, delete and create, then fail: all undone.
	err := transact(
		put(item("1", "changed"), ""),
		types.TransactWriteItem{Update: &types.Update{TableName: aws.String(table), Key: key("2"),
			UpdateExpression: aws.String("SET v = :v"), ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberS{Value: "upd"}}}},
		put(item("3", "new"), ""),
		failing,
	)
	if !cancelled(err) {
		t.Fatalf("want a cancelled transaction, got %v", err)
	}
	if v := get("1")["v"].(*types.AttributeValueMemberS).Value; v != "a" {
		t.Errorf("item 1 is %q after the rollback", v)
	}
	if v := get("2")["v"].(*types.AttributeValueMemberS).Value; v != "b" {
		t.Errorf("item 2 is %q after the rollback", v)
	}
	if get("3") != nil {
		t.Error("item 3 survived the rollback")
	}
	err = transact(types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(table), Key: key("1")}}, failing)
	if !cancelled(err) || get("1") == nil {
		t.Errorf("delete then fail: %v, item %v", err, get("1"))
	}
	if n := streamLen(); n != 2 {
		t.Errorf("%d stream records after cancelled transactions, want 2", n)
	}
	// A condition failing on the first item cancels too.
	if err := transact(put(item("1", "x"), "attribute_not_exists(seq)"), put(item("4", "y"), "")); !cancelled(err) || get("4") != nil {
		t.Errorf("first item failing: %v, item 4 %v", err, get("4"))
	}
}
