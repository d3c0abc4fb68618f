package dynamo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/eventlog/dynamo"
	"github.com/sheetlog/sheetlog/pkg/eventlog/dynamo/streamrecord"
)

// readStream reads every record of the table's stream so far and returns
// them as Lambda would receive them: converted to the events shape,
// marshalled to JSON and unmarshalled again.
func readStream(t *testing.T, f *fixture) []events.DynamoDBEventRecord {
	t.Helper()
	ctx := context.Background()
	d, err := f.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(f.table)})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(d.Table.LatestStreamArn)
	if arn == "" {
		t.Fatal("the table has no stream")
	}
	sc := f.env.Streams()
	desc, err := sc.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	var recs []types.Record
	for _, sh := range desc.StreamDescription.Shards {
		it, err := sc.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
			StreamArn: aws.String(arn), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil {
			out, err := sc.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, out.Records...)
			if len(out.Records) == 0 {
				break
			}
			iter = out.NextShardIterator
		}
	}
	ev, err := streamrecord.Event(arn, recs)
	if err != nil {
		t.Fatal(err)
	}
	wire, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var got events.DynamoDBEvent
	if err := json.Unmarshal(wire, &got); err != nil {
		t.Fatalf("Lambda could not decode the event: %v\n%s", err, wire)
	}
	for _, r := range got.Records {
		if r.EventSourceArn != arn || r.EventSource != "aws:dynamodb" || r.Change.SequenceNumber == "" || r.EventName == "" {
			t.Fatalf("record lacks Lambda fields: %+v", r)
		}
	}
	return got.Records
}

// Images from the emulator's stream decode to the entries the log
// returns; head images are told apart; every attribute type survives the
// trip from the Streams API through Lambda's JSON shape.
func TestStreamImages(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	l := f.log(t, dynamo.Options{})
	mustAdd(t, l, 0, entry(0))
	mustAdd(t, l, 1, eventlog.Entry{Body: []byte(`{"type":"x","s":"ünïcödé \u2028 \"q\"","n":1.5e3,"nested":{"a":[1,null,true]}}`),
		Metadata: eventlog.Metadata{Pending: "snapshot", History: "h1"}})
	if ok, err := l.SetMetadata(ctx, 1, eventlog.CompleteWorkflow("snapshot", "snap-1")); err != nil || !ok {
		t.Fatal(ok, err)
	}
	mustAdd(t, l, 2, entry(2))
	if err := l.Truncate(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// An item with every attribute type, written directly.
	all := map[string]ddbtypes.AttributeValue{
		"sheet": &ddbtypes.AttributeValueMemberS{Value: "types"},
		"seq":   &ddbtypes.AttributeValueMemberN{Value: "7"},
		"s":     &ddbtypes.AttributeValueMemberS{Value: "ä\x00b"},
		"n":     &ddbtypes.AttributeValueMemberN{Value: "-12.5"},
		"b":     &ddbtypes.AttributeValueMemberB{Value: []byte{0, 1, 2, 255}},
		"t":     &ddbtypes.AttributeValueMemberBOOL{Value: true},
		"f":     &ddbtypes.AttributeValueMemberBOOL{Value: false},
		"z":     &ddbtypes.AttributeValueMemberNULL{Value: true},
		"ss":    &ddbtypes.AttributeValueMemberSS{Value: []string{"a", "b"}},
		"ns":    &ddbtypes.AttributeValueMemberNS{Value: []string{"1", "2.5"}},
		"bs":    &ddbtypes.AttributeValueMemberBS{Value: [][]byte{{1}, {2, 3}}},
		"l": &ddbtypes.AttributeValueMemberL{Value: []ddbtypes.AttributeValue{
			&ddbtypes.AttributeValueMemberS{Value: "x"}, &ddbtypes.AttributeValueMemberN{Value: "3"},
			&ddbtypes.AttributeValueMemberM{Value: map[string]ddbtypes.AttributeValue{}}}},
		"m": &ddbtypes.AttributeValueMemberM{Value: map[string]ddbtypes.AttributeValue{
			"inner": &ddbtypes.AttributeValueMemberL{Value: []ddbtypes.AttributeValue{&ddbtypes.AttributeValueMemberBOOL{Value: false}}},
			"b":     &ddbtypes.AttributeValueMemberB{Value: []byte("bin")}}},
	}
	if _, err := f.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(f.table), Item: all}); err != nil {
		t.Fatal(err)
	}

	recs := readStream(t, f)
	var (
		inserts   = map[eventlog.SequenceID]dynamo.StreamEntry{}
		lastImage = map[eventlog.SequenceID]dynamo.StreamEntry{}
		heads     int
		removed   []eventlog.SequenceID
		filtered  []string
		sawTypes  bool
	)
	filter := awsschema.StreamFilter()["dynamodb"].(map[string]any)["NewImage"].(map[string]any)
	for _, r := range recs {
		if sheet := r.Change.Keys["sheet"].String(); sheet == "types" {
			got, err := dynamo.ItemFromImage(r.Change.NewImage)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, all) {
				t.Errorf("item with every type changed on the way:\n got %#v\nwant %#v", got, all)
			}
			_, err = dynamo.EntryFromImage(r.Change.NewImage)
			if !errors.As(err, new(*errs.ValidationError)) {
				t.Errorf("a non-entry image decoded: %v", err)
			}
			sawTypes = true
			continue
		}
		if r.Change.NewImage != nil {
			for attr := range filter { // the deployed filter: NewImage.pending exists
				if _, ok := r.Change.NewImage[attr]; ok {
					filtered = append(filtered, fmt.Sprintf("%s %s", r.EventName, r.Change.Keys["seq"].Number()))
				}
			}
		}
		if r.EventName == "REMOVE" {
			// The stream view is NEW_IMAGE: a removal carries the keys only.
			if r.Change.OldImage != nil || r.Change.NewImage != nil {
				t.Errorf("REMOVE record with images (view %s): %v / %v", r.Change.StreamViewType, r.Change.OldImage, r.Change.NewImage)
			}
			seq, err := strconv.ParseUint(r.Change.Keys["seq"].Number(), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			removed = append(removed, eventlog.SequenceID(seq))
			continue
		}
		e, err := dynamo.EntryFromImage(r.Change.NewImage)
		if errors.Is(err, dynamo.ErrNotEntry) {
			heads++
			continue
		}
		if err != nil {
			t.Fatalf("%s record: %v", r.EventName, err)
		}
		if e.Sheet != l.Sheet() {
			t.Fatalf("sheet %q", e.Sheet)
		}
		if r.EventName == "INSERT" {
			inserts[e.SequenceID] = e
		}
		lastImage[e.SequenceID] = e
	}
	if !sawTypes {
		t.Fatal("no record of the item with every type")
	}
	if heads == 0 {
		t.Error("no head records seen")
	}
	if !reflect.DeepEqual(removed, []eventlog.SequenceID{0}) {
		t.Errorf("REMOVE records for %v, want [0]", removed)
	}
	// What the stream filter lets through: the insert with pending and
	// nothing else (the completion's new image has no pending).
	if want := []string{"INSERT 1"}; !reflect.DeepEqual(filtered, want) {
		t.Errorf("records through the filter %v, want %v", filtered, want)
	}
	for id := range 3 {
		if string(inserts[eventlog.SequenceID(id)].Entry.Body) == "" {
			t.Fatalf("no INSERT record of entry %d", id)
		}
	}
	if e := inserts[1].Entry; e.Pending != "snapshot" || e.History != "h1" || e.Snapshot != "" {
		t.Errorf("inserted entry 1 has metadata %+v", e.Metadata)
	}
	// The newest image of each entry still in the log is what Query says.
	_, _, got := readAll(t, l)
	for i, e := range got {
		id := eventlog.SequenceID(i + 1)
		s := lastImage[id]
		if string(s.Entry.Body) != string(e.Body) || s.Entry.Metadata != e.Metadata {
			t.Errorf("entry %d: stream %s %+v, log %s %+v", id, s.Entry.Body, s.Entry.Metadata, e.Body, e.Metadata)
		}
	}
}

// Malformed images are errors, never panics.
func TestEntryFromBadImage(t *testing.T) {
	for name, img := range map[string]map[string]events.DynamoDBAttributeValue{
		"nil":        nil,
		"no sheet":   {"seq": events.NewNumberAttribute("1")},
		"bad sheet":  {"sheet": events.NewStringAttribute("../x"), "seq": events.NewNumberAttribute("1"), "body": events.NewStringAttribute(`{"type":"x"}`)},
		"seq string": {"sheet": events.NewStringAttribute("a"), "seq": events.NewStringAttribute("1")},
		"no body":    {"sheet": events.NewStringAttribute("a"), "seq": events.NewNumberAttribute("1")},
		"zero value": {"sheet": events.NewStringAttribute("a"), "seq": events.NewNumberAttribute("1"), "body": {}},
	} {
		if _, err := dynamo.EntryFromImage(img); err == nil || errors.Is(err, dynamo.ErrNotEntry) {
			t.Errorf("%s: %v, want an error", name, err)
		}
	}
}
