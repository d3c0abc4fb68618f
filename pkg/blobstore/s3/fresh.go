package s3blob

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
)

var (
	_ blobstore.Stater      = (*dir)(nil)
	_ blobstore.FreshWriter = (*dir)(nil)
)

// StatBlob: one HeadObject; on a miss, one ListObjectsV2 to tell a
// directory from nothing. S3 keeps LastModified to the second.
func (d *dir) StatBlob(ctx context.Context, name string) (blobstore.BlobInfo, error) {
	key, err := d.key(name)
	if err != nil {
		return blobstore.BlobInfo{}, err
	}
	out, err := d.store.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.store.bucket, Key: &key})
	if err != nil {
		return blobstore.BlobInfo{}, d.missOrWrongKind(ctx, err, name, key)
	}
	return blobstore.BlobInfo{Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

// WriteFreshBlob is WriteBlob without the kind checks: one PutObject.
// The snapshot writer uses it (blobstore.WriteFresh), which is what keeps
// a snapshot at about one request per tile.
func (d *dir) WriteFreshBlob(ctx context.Context, name string, data []byte) error {
	key, err := d.key(name)
	if err != nil {
		return err
	}
	return d.put(ctx, key, data)
}

// CopyFreshBlob is CopyBlob without the kind checks: one CopyObject (plus
// one ListObjectsV2 when the source is missing).
func (d *dir) CopyFreshBlob(ctx context.Context, dstName string, src blobstore.BlobDir, srcName string) error {
	s, srcKey, dstKey, err := d.copyKeys(src, srcName, dstName)
	if err != nil {
		return err
	}
	if srcKey == dstKey {
		return d.CopyBlob(ctx, dstName, src, srcName)
	}
	return d.copyObject(ctx, s, srcName, srcKey, dstKey)
}

// copyKeys checks a server-side copy from src/srcName to dstName in d: src
// must be a directory of the same sheet of the same Store (else
// ErrCopyUnsupported), and both names valid. It returns src and the keys.
func (d *dir) copyKeys(src blobstore.BlobDir, srcName, dstName string) (s *dir, srcKey, dstKey string, err error) {
	s, ok := src.(*dir)
	if !ok || s.store != d.store || s.root != d.root {
		return nil, "", "", blobstore.ErrCopyUnsupported
	}
	if srcKey, err = s.key(srcName); err != nil {
		return nil, "", "", err
	}
	if dstKey, err = d.key(dstName); err != nil {
		return nil, "", "", err
	}
	return s, srcKey, dstKey, nil
}
