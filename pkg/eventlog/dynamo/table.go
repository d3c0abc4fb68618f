package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
)

// CreateTableInput builds the CreateTable request of the event log table
// named name from awsschema.EventLogTable, the one definition the CDK stack
// deploys: keys, the sparse pending index, the stream view and the billing
// mode all come from there.
func CreateTableInput(name string) *dynamodb.CreateTableInput {
	t := awsschema.EventLogTable
	attrs := map[string]types.ScalarAttributeType{}
	add := func(k awsschema.Key) types.KeySchemaElement {
		attrs[k.Name] = types.ScalarAttributeType(k.Type)
		return types.KeySchemaElement{AttributeName: aws.String(k.Name), KeyType: types.KeyTypeHash}
	}
	rangeKey := func(k awsschema.Key) types.KeySchemaElement {
		e := add(k)
		e.KeyType = types.KeyTypeRange
		return e
	}
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		KeySchema:   []types.KeySchemaElement{add(t.PartitionKey), rangeKey(t.SortKey)},
		BillingMode: types.BillingMode(t.BillingMode),
	}
	for _, ix := range t.Indexes {
		p := &types.Projection{ProjectionType: types.ProjectionType(ix.Projection)}
		if len(ix.NonKeyAttributes) > 0 {
			p.NonKeyAttributes = append([]string(nil), ix.NonKeyAttributes...)
		}
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, types.GlobalSecondaryIndex{
			IndexName:  aws.String(ix.Name),
			KeySchema:  []types.KeySchemaElement{add(ix.PartitionKey), rangeKey(ix.SortKey)},
			Projection: p,
		})
	}
	if t.StreamView != "" {
		in.StreamSpecification = &types.StreamSpecification{
			StreamEnabled:  aws.Bool(true),
			StreamViewType: types.StreamViewType(t.StreamView),
		}
	}
	for _, name := range sortedKeys(attrs) {
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
			AttributeName: aws.String(name), AttributeType: attrs[name],
		})
	}
	return in
}

// CreateTable creates the event log table and waits until it is active.
func CreateTable(ctx context.Context, client *dynamodb.Client, name string) error {
	if _, err := client.CreateTable(ctx, CreateTableInput(name)); err != nil {
		return fmt.Errorf("creating table %s: %w", name, err)
	}
	w := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = 5 * time.Second
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 5*time.Minute); err != nil {
		return fmt.Errorf("waiting for table %s: %w", name, err)
	}
	return nil
}

// DeleteTable deletes the table (tests and the end-to-end harness).
func DeleteTable(ctx context.Context, client *dynamodb.Client, name string) error {
	_, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	return err
}
