package blob

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3Config configures the S3 provider.
type S3Config struct {
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	Bucket          string
	// Endpoint is an S3-compatible server's URL; empty is AWS.
	Endpoint string
	// PathStyle puts the bucket in the path instead of the host name.
	PathStyle bool
}

// S3 is an S3 bucket behind presigned SigV4 URLs.
type S3 struct {
	cfg     S3Config
	client  *s3.Client
	presign *s3.PresignClient
}

// NewS3 returns the S3 provider; it makes no request.
func NewS3(cfg S3Config) (*S3, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3 storage needs a bucket (S3_BUCKET_NAME)")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	opts := s3.Options{
		Region:       cfg.Region,
		UsePathStyle: cfg.PathStyle,
		// Checksums only where S3 requires them: a presigned URL must not
		// bind a checksum of bytes the signer never sees.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if cfg.AccessKeyID != "" {
		opts.Credentials = credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")
	}
	if cfg.Endpoint != "" {
		opts.BaseEndpoint = aws.String(cfg.Endpoint)
	}
	c := s3.New(opts)
	return &S3{cfg: cfg, client: c, presign: s3.NewPresignClient(c)}, nil
}

// Name is "s3".
func (p *S3) Name() string { return "s3" }

// Ensure creates the bucket unless it is there.
func (p *S3) Ensure(ctx context.Context) error {
	_, err := p.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &p.cfg.Bucket})
	if err == nil {
		return nil
	}
	switch status(err) {
	case http.StatusNotFound:
	case http.StatusForbidden:
		// Credentials scoped to the bucket's objects may not head it;
		// signing needs no such right.
		return nil
	default:
		return fmt.Errorf("checking bucket %s: %w", p.cfg.Bucket, err)
	}
	if _, err := p.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &p.cfg.Bucket}); err != nil {
		return fmt.Errorf("creating bucket %s: %w", p.cfg.Bucket, err)
	}
	return nil
}

func status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func signedOf(u, method string, h http.Header, exp time.Time) Signed {
	out := Signed{URL: u, Method: method, Headers: map[string]string{}, ExpiresAt: exp}
	for k, v := range h {
		if strings.EqualFold(k, "Host") || len(v) == 0 {
			continue
		}
		out.Headers[http.CanonicalHeaderKey(k)] = v[0]
	}
	return out
}

func expiresAt(d time.Duration) time.Time { return time.Now().Add(d).Truncate(time.Second) }

// PresignPut signs a PutObject bound to the content type and length.
func (p *S3) PresignPut(ctx context.Context, key string, pp PutParams) (Signed, error) {
	exp := expiresAt(pp.Expires)
	r, err := p.presign.PresignPutObject(ctx, &s3.PutObjectInput{
		Bucket: &p.cfg.Bucket, Key: &key, ContentType: &pp.ContentType, ContentLength: &pp.Size,
	}, s3.WithPresignExpires(pp.Expires))
	if err != nil {
		return Signed{}, fmt.Errorf("presigning put: %w", err)
	}
	return signedOf(r.URL, r.Method, r.SignedHeader, exp), nil
}

// PresignGet signs a GetObject, with the answer's headers overridden.
func (p *S3) PresignGet(ctx context.Context, key string, gp GetParams) (Signed, error) {
	exp := expiresAt(gp.Expires)
	in := &s3.GetObjectInput{Bucket: &p.cfg.Bucket, Key: &key}
	if gp.ContentType != "" {
		in.ResponseContentType = &gp.ContentType
	}
	if gp.ContentDisposition != "" {
		in.ResponseContentDisposition = &gp.ContentDisposition
	}
	r, err := p.presign.PresignGetObject(ctx, in, s3.WithPresignExpires(gp.Expires))
	if err != nil {
		return Signed{}, fmt.Errorf("presigning get: %w", err)
	}
	return signedOf(r.URL, r.Method, r.SignedHeader, exp), nil
}

// Stat heads the object.
func (p *S3) Stat(ctx context.Context, key string) (Info, error) {
	out, err := p.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &p.cfg.Bucket, Key: &key})
	if status(err) == http.StatusNotFound {
		return Info{}, ErrNotFound
	}
	if err != nil {
		return Info{}, fmt.Errorf("head object: %w", err)
	}
	return Info{Size: aws.ToInt64(out.ContentLength), ContentType: aws.ToString(out.ContentType), ETag: strings.Trim(aws.ToString(out.ETag), `"`)}, nil
}

// Delete deletes the object.
func (p *S3) Delete(ctx context.Context, key string) error {
	_, err := p.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &p.cfg.Bucket, Key: &key})
	if err != nil && status(err) != http.StatusNotFound {
		return fmt.Errorf("delete object: %w", err)
	}
	return nil
}

// CreateMultipart starts a multipart upload.
func (p *S3) CreateMultipart(ctx context.Context, key, contentType string) (string, error) {
	out, err := p.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &p.cfg.Bucket, Key: &key, ContentType: &contentType})
	if err != nil {
		return "", fmt.Errorf("create multipart upload: %w", err)
	}
	return aws.ToString(out.UploadId), nil
}

// PresignPart signs an UploadPart bound to its number and length.
func (p *S3) PresignPart(ctx context.Context, key, uploadID string, n int, size int64, expires time.Duration) (Signed, error) {
	exp := expiresAt(expires)
	num := int32(n)
	r, err := p.presign.PresignUploadPart(ctx, &s3.UploadPartInput{
		Bucket: &p.cfg.Bucket, Key: &key, UploadId: &uploadID, PartNumber: &num, ContentLength: &size,
	}, s3.WithPresignExpires(expires))
	if err != nil {
		return Signed{}, fmt.Errorf("presigning part: %w", err)
	}
	return signedOf(r.URL, r.Method, r.SignedHeader, exp), nil
}

// CompleteMultipart completes the upload with the parts' ETags.
func (p *S3) CompleteMultipart(ctx context.Context, key, uploadID, _ string, parts []Part) error {
	cp := make([]types.CompletedPart, len(parts))
	for i, pt := range parts {
		num := int32(pt.Number)
		etag := `"` + strings.Trim(pt.ETag, `"`) + `"`
		cp[i] = types.CompletedPart{PartNumber: &num, ETag: &etag}
	}
	_, err := p.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &p.cfg.Bucket, Key: &key, UploadId: &uploadID, MultipartUpload: &types.CompletedMultipartUpload{Parts: cp},
	})
	if err != nil {
		if st := status(err); st == http.StatusBadRequest || st == http.StatusNotFound {
			return fmt.Errorf("%w: %v", ErrPartMismatch, err)
		}
		return fmt.Errorf("complete multipart upload: %w", err)
	}
	return nil
}

// AbortMultipart aborts the upload.
func (p *S3) AbortMultipart(ctx context.Context, key, uploadID string) error {
	_, err := p.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &p.cfg.Bucket, Key: &key, UploadId: &uploadID})
	if err != nil && status(err) != http.StatusNotFound {
		return fmt.Errorf("abort multipart upload: %w", err)
	}
	return nil
}
