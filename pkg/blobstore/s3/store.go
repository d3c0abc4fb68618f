// Package s3blob is the blob store of the AWS deployment: every sheet's
// blobs live in one S3 bucket under the key prefix awsschema.BlobPrefix,
// and a directory is a key prefix ending in "/".
//
// The contract's kind rules (a name is a blob or a directory, never both)
// are not something S3 knows about: "a" and "a/x" are unrelated keys to it.
// The store keeps the rule by checking the other kind before a write, and
// only when the primary request reports a miss on reads; see docs/s3.md for
// the request count of every operation. Two racing writers (WriteBlob("a")
// and a write under "a/") can still both succeed, since S3 has no
// condition across keys; the store then shows "a" as both a blob and a
// directory, and each operation acts on the kind it asks for.
package s3blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/blobstore/continuation"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/sheetid"
)

// Defaults of Options.
const (
	// DefaultPageSize is S3's largest ListObjectsV2 page.
	DefaultPageSize = 1000
	// DefaultMaxAttempts counts the first try: up to 4 retries.
	DefaultMaxAttempts = 5
	// DefaultMaxBackoff caps one retry's delay. The API Lambda answers a
	// user, so a few seconds of retrying is the most worth waiting for.
	DefaultMaxBackoff = 2 * time.Second
	// maxBatch is S3's limit for both ListObjectsV2 MaxKeys and the number
	// of keys in one DeleteObjects.
	maxBatch = 1000
)

// Options tune a Store. The zero value is the production setting, except
// that TokenKey should be a secret (see TokenKey).
type Options struct {
	// PageSize is the MaxKeys of Query's ListObjectsV2: at most this many
	// names (blobs and directories together) per page. 0 means
	// DefaultPageSize; at most 1000.
	PageSize int
	// TokenKey is the HMAC-SHA256 key that seals continuation tokens to
	// the bucket and directory they came from. Every process serving the
	// same bucket must use the same key (a token issued by one Lambda
	// instance is redeemed by another). Nil derives a key from the bucket
	// name: tokens are then still bound to their directory, so a token
	// used in another directory or sheet, or a corrupted one, is refused,
	// but someone who knows the bucket name can forge one. A forged token
	// still cannot reach outside its directory (every listing is limited
	// by its Prefix); it can only make S3 start listing elsewhere within
	// the directory, or refuse the token.
	TokenKey []byte
	// UsePathStyle puts the bucket in the URL path, as emulators need.
	UsePathStyle bool
	// MaxAttempts is the SDK retryer's attempt limit for throttling, 5xx
	// and network errors. 0 means DefaultMaxAttempts.
	MaxAttempts int
	// MaxBackoff caps the jittered exponential delay between attempts. 0
	// means DefaultMaxBackoff.
	MaxBackoff time.Duration
	// BaseDelay is the first retry's delay before jitter (throttling
	// errors start at 1s whatever this says). 0 means the SDK's 50ms.
	BaseDelay time.Duration
	// ClientOptions are applied last to the S3 client's options, e.g. to
	// add middleware or replace the HTTP client.
	ClientOptions []func(*s3.Options)
	// URLTTL is how long a URL of ReadBlobOrURL stays valid. 0 means
	// DefaultURLTTL.
	URLTTL time.Duration
}

// DefaultURLTTL is how long a presigned blob URL is valid: long enough
// for a client to follow a redirect, short enough that a leaked URL soon
// serves nothing.
const DefaultURLTTL = 5 * time.Minute

// Store is the blob store on one bucket. It is safe for concurrent use.
type Store struct {
	client      *s3.Client
	presign     *s3.PresignClient
	urlTTL      time.Duration
	bucket      string
	pageSize    int32
	removeBatch int32
	tokens      continuation.Sealer
}

var _ blobstore.Store = (*Store)(nil)

// New opens the blob store on bucket with the endpoint, region and
// credentials of cfg (so AWS_ENDPOINT_URL_S3 and friends apply when cfg
// comes from config.LoadDefaultConfig). The bucket must exist.
func New(cfg aws.Config, bucket string, opts Options) (*Store, error) {
	if bucket == "" {
		return nil, errors.New("s3blob: empty bucket name")
	}
	pageSize := opts.PageSize
	if pageSize == 0 {
		pageSize = DefaultPageSize
	}
	if pageSize < 1 || pageSize > maxBatch {
		return nil, fmt.Errorf("s3blob: page size %d outside 1..%d", opts.PageSize, maxBatch)
	}
	maxAttempts := opts.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	maxBackoff := opts.MaxBackoff
	if maxBackoff <= 0 {
		maxBackoff = DefaultMaxBackoff
	}
	retryer := func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = maxAttempts
			o.MaxBackoff = maxBackoff
			o.BaseDelay = opts.BaseDelay
		})
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = opts.UsePathStyle
		o.Retryer = retryer()
		for _, fn := range opts.ClientOptions {
			fn(o)
		}
	})
	key := opts.TokenKey
	if len(key) == 0 {
		sum := sha256.Sum256([]byte("sheetlog s3blob default token key\x00" + bucket))
		key = sum[:]
	}
	urlTTL := opts.URLTTL
	if urlTTL <= 0 {
		urlTTL = DefaultURLTTL
	}
	return &Store{
		client:      client,
		presign:     s3.NewPresignClient(client),
		urlTTL:      urlTTL,
		bucket:      bucket,
		pageSize:    int32(pageSize),
		removeBatch: maxBatch,
		tokens:      continuation.NewSealer(key, "sheetlog s3blob query v1"),
	}, nil
}

// Sheet returns the root directory of sheet, whose keys all start with
// awsschema.BlobPrefix(sheet). It sends no request.
func (s *Store) Sheet(sheet string) (blobstore.BlobDir, error) {
	if err := sheetid.Validate(sheet); err != nil {
		return nil, err
	}
	p := awsschema.BlobPrefix(sheet)
	return &dir{store: s, root: p, prefix: p}, nil
}

// dir is one directory: every key in it starts with prefix, which ends in
// "/". A blob name never contains "/" (blobstore.ValidateName), so
// prefix+name names exactly one blob and prefix+name+"/" one directory.
type dir struct {
	store *Store
	// root is the sheet's prefix; prefix is root plus the directory's
	// path, each name followed by "/".
	root, prefix string
}

var (
	_ blobstore.BlobDir   = (*dir)(nil)
	_ blobstore.Copier    = (*dir)(nil)
	_ blobstore.URLReader = (*dir)(nil)
)

func (d *dir) key(name string) (string, error) {
	if err := blobstore.ValidateName(name); err != nil {
		return "", err
	}
	return d.prefix + name, nil
}

// ReadBlob: one GetObject; on a miss, one ListObjectsV2 to tell a
// directory from nothing.
func (d *dir) ReadBlob(ctx context.Context, name string) ([]byte, error) {
	key, err := d.key(name)
	if err != nil {
		return nil, err
	}
	out, err := d.store.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &d.store.bucket, Key: &key})
	if err != nil {
		return nil, d.missOrWrongKind(ctx, err, name, key)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, errs.Storage(err, "s3blob: reading blob %q", key)
	}
	return b, nil
}

// ReadBlobOrURL: one GetObject, as ReadBlob. When the object is larger
// than maxBytes its body is dropped unread (the connection with it) and a
// presigned GetObject URL is returned instead, signed here with the
// store's credentials, no request sent: whoever holds it can GET the
// object for Options.URLTTL, and nothing else.
func (d *dir) ReadBlobOrURL(ctx context.Context, name string, maxBytes int64) ([]byte, *blobstore.BlobURL, error) {
	key, err := d.key(name)
	if err != nil {
		return nil, nil, err
	}
	out, err := d.store.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &d.store.bucket, Key: &key})
	if err != nil {
		return nil, nil, d.missOrWrongKind(ctx, err, name, key)
	}
	defer out.Body.Close()
	if size := aws.ToInt64(out.ContentLength); size > maxBytes {
		ps, err := d.store.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &d.store.bucket, Key: &key},
			s3.WithPresignExpires(d.store.urlTTL))
		if err != nil {
			return nil, nil, errs.Storage(err, "s3blob: presigning blob %q", key)
		}
		return nil, &blobstore.BlobURL{URL: ps.URL, Size: size, Expires: time.Now().Add(d.store.urlTTL)}, nil
	}
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, nil, errs.Storage(err, "s3blob: reading blob %q", key)
	}
	return b, nil, nil
}

// missOrWrongKind turns the error of a request on the blob key into the
// contract's error: a miss is a 404 unless a directory of that name exists.
func (d *dir) missOrWrongKind(ctx context.Context, cause error, name, key string) error {
	if !isNotFound(cause) {
		return storageErr(cause, "s3blob: blob %q", key)
	}
	isDir, err := d.store.dirExists(ctx, key)
	if err != nil {
		return err
	}
	if isDir {
		return errs.WrongKind(name, true)
	}
	return &errs.StorageError{StatusCode: 404, Message: fmt.Sprintf("blob %q not found", name), Err: cause}
}

// WriteBlob: the checks of writable, then one PutObject. The checks must
// come first: a put cannot be made conditional on other keys, and undoing
// it later would expose the bad state.
func (d *dir) WriteBlob(ctx context.Context, name string, data []byte) error {
	key, err := d.key(name)
	if err != nil {
		return err
	}
	if err := d.writable(ctx, name, key); err != nil {
		return err
	}
	return d.put(ctx, key, data)
}

// put is one PutObject of data at key.
func (d *dir) put(ctx context.Context, key string, data []byte) error {
	// The SDK sends data during the call, so the caller may reuse the
	// buffer once we return.
	_, err := d.store.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &d.store.bucket,
		Key:           &key,
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   aws.String("application/octet-stream"),
	})
	if err != nil {
		return storageErr(err, "s3blob: writing blob %q", key)
	}
	return nil
}

// writable checks that a blob may be written at key: no directory has
// that name (one ListObjectsV2 of at most one key below key+"/"), and no
// directory on the way from the sheet's root is a blob (one HeadObject per
// level below the root). The second matters for a handle whose directory
// emptied and was replaced by a blob after GetDir returned it: a write
// through it would otherwise put a key below a blob. All the requests go
// out at once, so the checks cost one round trip.
func (d *dir) writable(ctx context.Context, name, key string) error {
	ancestors := d.ancestors()
	// Returning early on a kind error cancels the checks still running.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1+len(ancestors))
	go func() {
		isDir, err := d.store.dirExists(ctx, key)
		if err == nil && isDir {
			err = errs.WrongKind(name, true)
		}
		errc <- err
	}()
	for _, a := range ancestors {
		go func() {
			isBlob, err := d.store.blobExists(ctx, a)
			if err == nil && isBlob {
				err = errs.WrongKind(strings.TrimPrefix(a, d.root), false)
			}
			errc <- err
		}()
	}
	// A kind error wins over a failed request: it is the answer whatever
	// the other checks would have said.
	var first error
	for range 1 + len(ancestors) {
		err := <-errc
		var wk *errs.BlobWrongKindError
		switch {
		case errors.As(err, &wk):
			return err
		case err != nil && first == nil:
			first = err
		}
	}
	return first
}

// ancestors returns the blob keys that the directories from the sheet's
// root down to d would have if they were blobs: for root "sheets/s/" and
// prefix "sheets/s/a/b/", "sheets/s/a" and "sheets/s/a/b".
func (d *dir) ancestors() []string {
	var keys []string
	for i := len(d.root); i < len(d.prefix); i++ {
		if d.prefix[i] == '/' {
			keys = append(keys, d.prefix[:i])
		}
	}
	return keys
}

// RemoveBlob: one HeadObject, then one DeleteObject when the blob exists
// or one ListObjectsV2 when it does not (to refuse a directory). S3's
// DeleteObject succeeds on a missing key, so it cannot tell us which.
func (d *dir) RemoveBlob(ctx context.Context, name string) error {
	key, err := d.key(name)
	if err != nil {
		return err
	}
	_, err = d.store.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.store.bucket, Key: &key})
	if err != nil {
		err = d.missOrWrongKind(ctx, err, name, key)
		var se *errs.StorageError
		if errors.As(err, &se) && se.StatusCode == 404 {
			return nil
		}
		return err
	}
	_, err = d.store.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &d.store.bucket, Key: &key})
	if err != nil {
		return storageErr(err, "s3blob: removing blob %q", key)
	}
	return nil
}

// GetDir: one HeadObject, to refuse a blob of that name. Nothing is
// written: a directory exists once a key below it does.
func (d *dir) GetDir(ctx context.Context, name string) (blobstore.BlobDir, error) {
	key, err := d.key(name)
	if err != nil {
		return nil, err
	}
	isBlob, err := d.store.blobExists(ctx, key)
	switch {
	case err != nil:
		return nil, err
	case isBlob:
		return nil, errs.WrongKind(name, false)
	}
	return &dir{store: d.store, root: d.root, prefix: key + "/"}, nil
}

// Query: one ListObjectsV2 with Delimiter "/" per page. Keys directly under
// the prefix are the blobs; CommonPrefixes, which S3 only reports when a
// key exists below them, are the non-empty directories.
func (d *dir) Query(ctx context.Context, continuation string) (blobstore.Page, error) {
	in := &s3.ListObjectsV2Input{
		Bucket:    &d.store.bucket,
		Prefix:    &d.prefix,
		Delimiter: aws.String("/"),
		MaxKeys:   aws.Int32(d.store.pageSize),
	}
	if continuation != "" {
		tok, err := d.openToken(continuation)
		if err != nil {
			return blobstore.Page{}, err
		}
		in.ContinuationToken = &tok
	}
	out, err := d.store.client.ListObjectsV2(ctx, in)
	if err != nil {
		// Only a token we sealed reaches S3, so S3 refusing it means it
		// expired or was forged with the default key.
		var ae smithy.APIError
		if continuation != "" && errors.As(err, &ae) && ae.ErrorCode() == "InvalidArgument" {
			return blobstore.Page{}, errs.NoContinuation("s3blob: continuation token refused by S3: %s", ae.ErrorMessage())
		}
		return blobstore.Page{}, storageErr(err, "s3blob: listing %q", d.prefix)
	}
	var page blobstore.Page
	for _, o := range out.Contents {
		// A key that no valid name reaches (written by something else,
		// e.g. a console "folder" marker ending in "/") is not shown.
		if name, ok := strings.CutPrefix(aws.ToString(o.Key), d.prefix); ok && blobstore.ValidateName(name) == nil {
			page.Blobs = append(page.Blobs, name)
		}
	}
	for _, p := range out.CommonPrefixes {
		if name, ok := strings.CutPrefix(aws.ToString(p.Prefix), d.prefix); ok {
			name = strings.TrimSuffix(name, "/")
			if blobstore.ValidateName(name) == nil {
				page.Dirs = append(page.Dirs, name)
			}
		}
	}
	if aws.ToBool(out.IsTruncated) {
		next := aws.ToString(out.NextContinuationToken)
		if next == "" {
			return blobstore.Page{}, errs.Storage(nil, "s3blob: listing %q is truncated but has no continuation token", d.prefix)
		}
		page.Continuation = d.sealToken(next)
	}
	return page, nil
}

// RemoveAll: per batch of up to 1000 keys, one ListObjectsV2 (no
// delimiter: the whole subtree) and one DeleteObjects. The prefix ends in
// "/", so directory "a" never reaches keys of "ab".
func (d *dir) RemoveAll(ctx context.Context) error {
	var token *string
	for {
		out, err := d.store.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
			Bucket:            &d.store.bucket,
			Prefix:            &d.prefix,
			MaxKeys:           aws.Int32(d.store.removeBatch),
			ContinuationToken: token,
		})
		if err != nil {
			return storageErr(err, "s3blob: listing %q to remove it", d.prefix)
		}
		if len(out.Contents) > 0 {
			ids := make([]types.ObjectIdentifier, 0, len(out.Contents))
			for _, o := range out.Contents {
				if !strings.HasPrefix(aws.ToString(o.Key), d.prefix) {
					// Never trust the listing with a delete.
					return errs.Storage(nil, "s3blob: listing %q returned key %q outside it", d.prefix, aws.ToString(o.Key))
				}
				ids = append(ids, types.ObjectIdentifier{Key: o.Key})
			}
			del, err := d.store.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
				Bucket: &d.store.bucket,
				Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
			})
			if err != nil {
				return storageErr(err, "s3blob: removing %d keys under %q", len(ids), d.prefix)
			}
			if len(del.Errors) > 0 {
				e := del.Errors[0]
				return errs.Storage(nil, "s3blob: removing %d of %d keys under %q failed, first %q: %s %s",
					len(del.Errors), len(ids), d.prefix, aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return nil
		}
		token = out.NextContinuationToken
		if aws.ToString(token) == "" {
			return errs.Storage(nil, "s3blob: listing %q is truncated but has no continuation token", d.prefix)
		}
	}
}

// CopyBlob copies server-side with CopyObject when src is a directory of
// the same sheet of the same Store: the checks of writable and one
// CopyObject, plus one ListObjectsV2 when the source is missing (a
// directory, or a 404). The bytes never pass through this process. A copy
// never crosses sheets, so that nothing a sheet's handles do can reach
// another sheet's keys; blobstore.Copy then reads and writes through the
// two handles the caller holds.
func (d *dir) CopyBlob(ctx context.Context, dstName string, src blobstore.BlobDir, srcName string) error {
	s, srcKey, dstKey, err := d.copyKeys(src, srcName, dstName)
	if err != nil {
		return err
	}
	if srcKey == dstKey {
		// S3 refuses to copy an object onto itself unchanged; the copy
		// is a no-op once the source is known to be a blob.
		isBlob, err := d.store.blobExists(ctx, srcKey)
		if err != nil || isBlob {
			return err
		}
		return s.missOrWrongKind(ctx, &types.NoSuchKey{}, srcName, srcKey)
	}
	if err := d.writable(ctx, dstName, dstKey); err != nil {
		return err
	}
	return d.copyObject(ctx, s, srcName, srcKey, dstKey)
}

// copyObject is one CopyObject of s/srcName (at srcKey) to dstKey.
func (d *dir) copyObject(ctx context.Context, s *dir, srcName, srcKey, dstKey string) error {
	_, err := d.store.client.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket:     &d.store.bucket,
		Key:        &dstKey,
		CopySource: aws.String(copySource(d.store.bucket, srcKey)),
	})
	if err != nil {
		return s.missOrWrongKind(ctx, err, srcName, srcKey)
	}
	return nil
}

// copySource is CopyObject's "bucket/key", URL-encoded as S3 requires. Only
// unreserved characters and "/" stay as they are: S3 would read "+" as a
// space, and "%" or "?" would be misparsed.
func copySource(bucket, key string) string {
	const hex = "0123456789ABCDEF"
	s := bucket + "/" + key
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '~', c == '/':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// blobExists reports whether key is a blob: one HeadObject.
func (s *Store) blobExists(ctx context.Context, key string) (bool, error) {
	_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	switch {
	case err == nil:
		return true, nil
	case isNotFound(err):
		return false, nil
	}
	return false, storageErr(err, "s3blob: checking for blob %q", key)
}

// dirExists reports whether any key lies below key+"/": one ListObjectsV2
// of at most one key.
func (s *Store) dirExists(ctx context.Context, key string) (bool, error) {
	out, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket:  &s.bucket,
		Prefix:  aws.String(key + "/"),
		MaxKeys: aws.Int32(1),
	})
	if err != nil {
		return false, storageErr(err, "s3blob: checking for directory %q", key+"/")
	}
	return len(out.Contents) > 0, nil
}

// Continuation tokens wrap S3's own token with an HMAC over the bucket
// and the directory's prefix (package continuation), so a token is only
// good in the directory that issued it, and any change to it is detected
// before anything reaches S3.
func (d *dir) tokenScope() []string { return []string{d.store.bucket, d.prefix} }

func (d *dir) sealToken(s3Token string) string { return d.store.tokens.Seal(d.tokenScope(), s3Token) }

func (d *dir) openToken(token string) (string, error) {
	return d.store.tokens.Open(d.tokenScope(), token)
}

// isNotFound reports a missing key: NoSuchKey from GetObject and
// CopyObject, a bodiless 404 from HeadObject. A missing bucket is a
// storage failure, not a missing blob (HeadObject cannot tell them apart,
// but every other request can).
func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		case "NoSuchBucket":
			return false
		}
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == 404
}

// storageErr wraps a failed request. The status stays unset (the API
// reports 503) whatever S3 said: a 403 or 400 from S3 is this server's
// problem, not the caller's. A missing key is the caller's 404.
func storageErr(err error, format string, args ...any) error {
	se := errs.Storage(err, format, args...)
	if isNotFound(err) {
		se.StatusCode = 404
	}
	return se
}
