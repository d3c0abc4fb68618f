package dynamo

import (
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/sheetid"
)

// ErrNotEntry is returned by EntryFromImage for an image of a sheet's head
// item, which is bookkeeping, not an entry. The stream filter
// (awsschema.StreamFilterPattern) never lets one through, since the head
// never has a pending attribute.
var ErrNotEntry = errors.New("dynamodb stream image is a log head, not an entry")

// StreamEntry is an entry as a stream record shows it.
type StreamEntry struct {
	Sheet      string
	SequenceID eventlog.SequenceID
	Entry      eventlog.Entry
}

// EntryFromImage decodes an item image of a DynamoDB stream record as the
// Lambda events package delivers it (record.Change.NewImage or OldImage)
// into the entry the log's Query would return. The Lambda attribute values
// are not the SDK's, so they are converted first (ItemFromImage). Errors
// other than ErrNotEntry are ValidationErrors: the image is not an item of
// the event log table.
func EntryFromImage(image map[string]events.DynamoDBAttributeValue) (StreamEntry, error) {
	item, err := ItemFromImage(image)
	if err != nil {
		return StreamEntry{}, errs.Validation("stream image: %v", err)
	}
	sheet, ok := getString(item, attrSheet)
	if !ok {
		return StreamEntry{}, errs.Validation("stream image has no string %q key", attrSheet)
	}
	if err := sheetid.Validate(sheet); err != nil {
		return StreamEntry{}, err
	}
	seq, err := getInt(item, attrSeq)
	if err != nil {
		return StreamEntry{}, errs.Validation("stream image: %v", err)
	}
	if seq == headSeq {
		return StreamEntry{Sheet: sheet}, ErrNotEntry
	}
	d, err := decodeEntry(item)
	if err != nil {
		return StreamEntry{}, errs.Validation("stream image: %v", err)
	}
	return StreamEntry{Sheet: sheet, SequenceID: d.id, Entry: d.entry}, nil
}

// ItemFromImage converts a Lambda stream image into SDK attribute values
// (what attributevalue.UnmarshalMap and this package's decoders take).
func ItemFromImage(image map[string]events.DynamoDBAttributeValue) (item map[string]types.AttributeValue, err error) {
	// The events accessors panic on a value that was never set (its zero
	// value claims to be binary but holds nothing); bad input is an
	// error here, never a panic.
	defer func() {
		if r := recover(); r != nil {
			item, err = nil, fmt.Errorf("malformed attribute value: %v", r)
		}
	}()
	return itemFromImage(image)
}

func itemFromImage(image map[string]events.DynamoDBAttributeValue) (map[string]types.AttributeValue, error) {
	if image == nil {
		return nil, errors.New("no image")
	}
	out := make(map[string]types.AttributeValue, len(image))
	for k, v := range image {
		av, err := fromEvent(v)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", k, err)
		}
		out[k] = av
	}
	return out, nil
}

func fromEvent(v events.DynamoDBAttributeValue) (types.AttributeValue, error) {
	switch v.DataType() {
	case events.DataTypeString:
		return &types.AttributeValueMemberS{Value: v.String()}, nil
	case events.DataTypeNumber:
		return &types.AttributeValueMemberN{Value: v.Number()}, nil
	case events.DataTypeBinary:
		return &types.AttributeValueMemberB{Value: v.Binary()}, nil
	case events.DataTypeBoolean:
		return &types.AttributeValueMemberBOOL{Value: v.Boolean()}, nil
	case events.DataTypeNull:
		return &types.AttributeValueMemberNULL{Value: true}, nil
	case events.DataTypeStringSet:
		return &types.AttributeValueMemberSS{Value: v.StringSet()}, nil
	case events.DataTypeNumberSet:
		return &types.AttributeValueMemberNS{Value: v.NumberSet()}, nil
	case events.DataTypeBinarySet:
		return &types.AttributeValueMemberBS{Value: v.BinarySet()}, nil
	case events.DataTypeList:
		l := make([]types.AttributeValue, 0, len(v.List()))
		for i, e := range v.List() {
			av, err := fromEvent(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			l = append(l, av)
		}
		return &types.AttributeValueMemberL{Value: l}, nil
	case events.DataTypeMap:
		if len(v.Map()) == 0 {
			return &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}}, nil
		}
		m, err := itemFromImage(v.Map())
		if err != nil {
			return nil, err
		}
		return &types.AttributeValueMemberM{Value: m}, nil
	}
	return nil, fmt.Errorf("unsupported attribute type %v", v.DataType())
}
