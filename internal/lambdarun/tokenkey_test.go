package lambdarun_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/sheetlog/sheetlog/internal/lambdarun"
	"github.com/sheetlog/sheetlog/internal/moto"
	"github.com/sheetlog/sheetlog/pkg/blobstore"
	s3blob "github.com/sheetlog/sheetlog/pkg/blobstore/s3"
	"github.com/sheetlog/sheetlog/pkg/errs"
)

// The token key comes from the secret, read once at init: two "execution
// environments" reading the same secret redeem each other's tokens, one
// with another key (or the bucket-derived default) does not.
func TestTokenKeyFromSecret(t *testing.T) {
	env := moto.Get(t)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	sm := secretsmanager.NewFromConfig(env.Config)
	value := strings.Repeat("k3Y", 22)
	sec, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(moto.Name("token-key")), SecretString: aws.String(value)})
	if err != nil {
		t.Fatal(err)
	}
	key, err := lambdarun.LoadTokenKey(ctx, env.Config, lambdarun.Config{TokenKeySecret: aws.ToString(sec.ARN)}, log)
	if err != nil || !bytes.Equal(key, []byte(value)) {
		t.Fatalf("key %q, %v; want the secret's value", key, err)
	}

	short, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(moto.Name("short-key")), SecretString: aws.String("abc")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lambdarun.LoadTokenKey(ctx, env.Config, lambdarun.Config{TokenKeySecret: aws.ToString(short.ARN)}, log); err == nil {
		t.Error("a 3-byte key was accepted")
	}
	if _, err := lambdarun.LoadTokenKey(ctx, env.Config, lambdarun.Config{TokenKeySecret: "no-such-secret"}, log); err == nil {
		t.Error("a missing secret gave a key")
	}
	r1, _ := lambdarun.LoadTokenKey(ctx, env.Config, lambdarun.Config{}, log)
	r2, _ := lambdarun.LoadTokenKey(ctx, env.Config, lambdarun.Config{}, log)
	if len(r1) < lambdarun.MinTokenKeyBytes || bytes.Equal(r1, r2) {
		t.Errorf("without a secret: keys %x and %x, want two random ones", r1, r2)
	}

	// Tokens across instances.
	bucket := moto.Name("token-key")
	if _, err := env.S3().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	open := func(key []byte) blobstore.BlobDir {
		st, err := s3blob.New(env.Config, bucket, s3blob.Options{UsePathStyle: true, TokenKey: key, PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		d, err := st.Sheet("s")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	dirA, dirB, dirOther := open(key), open(append([]byte(nil), key...)), open(nil)
	for _, n := range []string{"x", "y"} {
		if err := dirA.WriteBlob(ctx, n, []byte(n)); err != nil {
			t.Fatal(err)
		}
	}
	page, err := dirA.Query(ctx, "")
	if err != nil || page.Continuation == "" {
		t.Fatalf("first page %+v, %v; want a continuation", page, err)
	}
	if _, err := dirB.Query(ctx, page.Continuation); err != nil {
		t.Errorf("another instance with the same secret refused the token: %v", err)
	}
	var nc *errs.NoContinuationError
	if _, err := dirOther.Query(ctx, page.Continuation); !errors.As(err, &nc) {
		t.Errorf("an instance with the bucket-derived key accepted the token: %v", err)
	}
}
