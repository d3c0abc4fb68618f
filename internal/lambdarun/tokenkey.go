package lambdarun

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
)

// MinTokenKeyBytes is the shortest token key accepted from the secret: an
// HMAC-SHA256 key should carry at least the hash's 256 bits.
const MinTokenKeyBytes = 32

// LoadTokenKey returns the HMAC key of blob listing continuation tokens.
// With c.TokenKeySecret set (the API function: every instance must seal
// with the same key, since a token one issues another redeems), it is the
// value of that Secrets Manager secret, read once, here, at init. Without
// it the key is random, good for this process only: the workflow and
// sweeper functions list blobs for themselves and hand no token out.
func LoadTokenKey(ctx context.Context, cfg aws.Config, c Config, log *slog.Logger) ([]byte, error) {
	if c.TokenKeySecret == "" {
		key := make([]byte, MinTokenKeyBytes)
		_, _ = rand.Read(key)
		log.Debug("continuation tokens sealed with a key of this process only", "reason", awsschema.EnvTokenKeySecret+" is not set")
		return key, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(c.TokenKeySecret),
	})
	if err != nil {
		return nil, fmt.Errorf("reading the continuation token key from secret %s: %w", c.TokenKeySecret, err)
	}
	key := out.SecretBinary
	if out.SecretString != nil {
		key = []byte(*out.SecretString)
	}
	if len(key) < MinTokenKeyBytes {
		return nil, errors.New("the continuation token key in secret " + c.TokenKeySecret +
			fmt.Sprintf(" is %d bytes; at least %d are needed", len(key), MinTokenKeyBytes))
	}
	log.Info("continuation token key read", "secret", c.TokenKeySecret, "version", aws.ToString(out.VersionId),
		"ms", time.Since(start).Milliseconds())
	return key, nil
}
