// Package streamrecord turns records read with the DynamoDB Streams API
// (GetRecords) into the records an event source mapping delivers to a
// Lambda function (github.com/aws/aws-lambda-go/events), so that anything
// polling a stream itself (the end-to-end harness's local event source
// mapping, tests) hands a handler exactly what Lambda would: marshalled to
// JSON, the result has Lambda's wire shape ("dynamodb", "eventSourceARN",
// typed attribute values such as {"N":"12"}, binary as base64).
package streamrecord

import (
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// Event converts records of the stream streamARN into one Lambda event.
func Event(streamARN string, records []types.Record) (events.DynamoDBEvent, error) {
	ev := events.DynamoDBEvent{Records: make([]events.DynamoDBEventRecord, 0, len(records))}
	for _, r := range records {
		rec, err := Record(streamARN, r)
		if err != nil {
			return events.DynamoDBEvent{}, err
		}
		ev.Records = append(ev.Records, rec)
	}
	return ev, nil
}

// Record converts one record. GetRecords does not say which stream a
// record came from, so the caller passes its ARN (Lambda's
// eventSourceARN).
func Record(streamARN string, r types.Record) (events.DynamoDBEventRecord, error) {
	out := events.DynamoDBEventRecord{
		AWSRegion:      aws.ToString(r.AwsRegion),
		EventID:        aws.ToString(r.EventID),
		EventName:      string(r.EventName),
		EventSource:    aws.ToString(r.EventSource),
		EventVersion:   aws.ToString(r.EventVersion),
		EventSourceArn: streamARN,
	}
	if out.EventSource == "" {
		out.EventSource = "aws:dynamodb"
	}
	if r.UserIdentity != nil {
		out.UserIdentity = &events.DynamoDBUserIdentity{
			Type:        aws.ToString(r.UserIdentity.Type),
			PrincipalID: aws.ToString(r.UserIdentity.PrincipalId),
		}
	}
	if d := r.Dynamodb; d != nil {
		var err error
		if d.ApproximateCreationDateTime != nil {
			out.Change.ApproximateCreationDateTime = events.SecondsEpochTime{Time: *d.ApproximateCreationDateTime}
		}
		if out.Change.Keys, err = Image(d.Keys); err != nil {
			return out, fmt.Errorf("record %s: keys: %w", out.EventID, err)
		}
		if out.Change.NewImage, err = Image(d.NewImage); err != nil {
			return out, fmt.Errorf("record %s: new image: %w", out.EventID, err)
		}
		if out.Change.OldImage, err = Image(d.OldImage); err != nil {
			return out, fmt.Errorf("record %s: old image: %w", out.EventID, err)
		}
		out.Change.SequenceNumber = aws.ToString(d.SequenceNumber)
		out.Change.SizeBytes = aws.ToInt64(d.SizeBytes)
		out.Change.StreamViewType = string(d.StreamViewType)
	}
	return out, nil
}

// Image converts an item image; nil stays nil (a record without that
// image).
func Image(img map[string]types.AttributeValue) (map[string]events.DynamoDBAttributeValue, error) {
	if img == nil {
		return nil, nil
	}
	out := make(map[string]events.DynamoDBAttributeValue, len(img))
	for k, v := range img {
		av, err := Value(v)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", k, err)
		}
		out[k] = av
	}
	return out, nil
}

// Value converts one attribute value, recursively.
func Value(v types.AttributeValue) (events.DynamoDBAttributeValue, error) {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return events.NewStringAttribute(v.Value), nil
	case *types.AttributeValueMemberN:
		return events.NewNumberAttribute(v.Value), nil
	case *types.AttributeValueMemberB:
		return events.NewBinaryAttribute(v.Value), nil
	case *types.AttributeValueMemberBOOL:
		return events.NewBooleanAttribute(v.Value), nil
	case *types.AttributeValueMemberNULL:
		return events.NewNullAttribute(), nil
	case *types.AttributeValueMemberSS:
		return events.NewStringSetAttribute(v.Value), nil
	case *types.AttributeValueMemberNS:
		return events.NewNumberSetAttribute(v.Value), nil
	case *types.AttributeValueMemberBS:
		return events.NewBinarySetAttribute(v.Value), nil
	case *types.AttributeValueMemberL:
		l := make([]events.DynamoDBAttributeValue, 0, len(v.Value))
		for i, e := range v.Value {
			av, err := Value(e)
			if err != nil {
				return events.DynamoDBAttributeValue{}, fmt.Errorf("[%d]: %w", i, err)
			}
			l = append(l, av)
		}
		return events.NewListAttribute(l), nil
	case *types.AttributeValueMemberM:
		m, err := Image(v.Value)
		if err != nil {
			return events.DynamoDBAttributeValue{}, err
		}
		if m == nil {
			m = map[string]events.DynamoDBAttributeValue{}
		}
		return events.NewMapAttribute(m), nil
	}
	return events.DynamoDBAttributeValue{}, fmt.Errorf("unsupported attribute value %T", v)
}
