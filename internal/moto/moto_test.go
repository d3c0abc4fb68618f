package moto_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sheetlog/sheetlog/internal/moto"
)

func TestMain(m *testing.M) { moto.Main(m) }

// The emulator answers DynamoDB and S3 on one endpoint.
func TestServes(t *testing.T) {
	env := moto.Get(t)
	ctx := context.Background()
	ddb := env.DynamoDB()
	name := moto.Name("harness")
	_, err := ddb.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("k"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("k"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	t.Cleanup(func() { ddb.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)}) })

	s3c := env.S3()
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	if _, err := s3c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("HeadBucket: %v", err)
	}
}

func TestName(t *testing.T) {
	a, b := moto.Name("Some_Test/Name"), moto.Name("Some_Test/Name")
	if a == b || len(a) > 63 {
		t.Fatalf("names %q %q", a, b)
	}
	long := moto.Name("x-very-long-prefix-that-goes-on-and-on-and-on-and-on-and-on-forever")
	if len(long) > 63 {
		t.Fatalf("%q is %d long", long, len(long))
	}
}
