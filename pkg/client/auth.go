package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/sheetlog/sheetlog/pkg/workers"
)

// Host is the worker host of a thin-client engine: it cannot request
// workflows, so an engine given it never sets pending (the deployment's
// own engines request snapshots).
var Host workers.WorkerHost = workers.NoWorkflowsHost{}

// Authorizer adds credentials to a request before it is sent (again on
// every retry, so signatures stay fresh). body is the request's body (nil
// for none).
type Authorizer interface {
	Authorize(ctx context.Context, req *http.Request, body []byte) error
}

// Bearer sends "Authorization: Bearer <token>": the single-machine
// server's token, or a JWT for a JWT deployment.
type Bearer string

// Authorize implements Authorizer.
func (b Bearer) Authorize(_ context.Context, req *http.Request, _ []byte) error {
	req.Header.Set("Authorization", "Bearer "+string(b))
	return nil
}

// SigV4 signs requests with AWS Signature Version 4 (the SDK's v4
// signer), for an HTTP API with IAM authorization.
type SigV4 struct {
	Credentials aws.CredentialsProvider
	Region      string
	// Service is the signing name (default "execute-api").
	Service string
}

// signer is shared: the SDK's signer is safe for concurrent use and
// caches derived keys.
var signer = v4.NewSigner()

// NewSigV4 signs with the default credential chain of the AWS SDK
// (environment, shared files, SSO, instance and container roles) for
// region; an empty region is taken from that configuration (AWS_REGION,
// the profile).
func NewSigV4(ctx context.Context, region string) (*SigV4, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("SigV4 needs a region: set AWS_REGION or pass one")
	}
	return &SigV4{Credentials: cfg.Credentials, Region: cfg.Region}, nil
}

// Authorize implements Authorizer.
func (s *SigV4) Authorize(ctx context.Context, req *http.Request, body []byte) error {
	if s.Credentials == nil {
		return fmt.Errorf("SigV4: no credentials provider")
	}
	creds, err := s.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("SigV4: retrieving credentials: %w", err)
	}
	service := s.Service
	if service == "" {
		service = "execute-api"
	}
	sum := sha256.Sum256(body)
	return signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), service, s.Region, time.Now())
}
