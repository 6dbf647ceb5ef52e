package blob

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	azb "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
)

// AzureConfig configures the Azure Blob provider.
type AzureConfig struct {
	Account   string
	Key       string
	Container string
	// Endpoint is the blob service URL; empty is
	// https://<account>.blob.core.windows.net/. Azurite's is
	// http://127.0.0.1:10000/devstoreaccount1.
	Endpoint string
}

// Azure is a blob container behind service SAS URLs. A SAS cannot bind the
// content type or the length of an upload: the service checks both against
// the declared ones (Stat) before a file counts as uploaded.
type Azure struct {
	cfg       AzureConfig
	cred      *azblob.SharedKeyCredential
	container *container.Client
	protocol  sas.Protocol
}

// NewAzure returns the Azure provider; it makes no request.
func NewAzure(cfg AzureConfig) (*Azure, error) {
	if cfg.Account == "" || cfg.Key == "" || cfg.Container == "" {
		return nil, errors.New("azure storage needs AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ACCOUNT_KEY and AZURE_CONTAINER_NAME")
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = "https://" + cfg.Account + ".blob.core.windows.net/"
	}
	cred, err := azblob.NewSharedKeyCredential(cfg.Account, cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("azure credential: %w", err)
	}
	svc, err := azblob.NewClientWithSharedKeyCredential(cfg.Endpoint, cred, nil)
	if err != nil {
		return nil, fmt.Errorf("azure client: %w", err)
	}
	proto := sas.ProtocolHTTPS
	if strings.HasPrefix(cfg.Endpoint, "http://") {
		proto = sas.ProtocolHTTPSandHTTP
	}
	return &Azure{cfg: cfg, cred: cred, container: svc.ServiceClient().NewContainerClient(cfg.Container), protocol: proto}, nil
}

// Name is "azure".
func (p *Azure) Name() string { return "azure" }

// Ensure creates the container unless it is there.
func (p *Azure) Ensure(ctx context.Context) error {
	_, err := p.container.Create(ctx, nil)
	if err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return fmt.Errorf("creating container %s: %w", p.cfg.Container, err)
	}
	return nil
}

func (p *Azure) sas(key string, perms sas.BlobPermissions, expires time.Duration, ct, cd string) (string, time.Time, error) {
	now := time.Now().UTC()
	exp := now.Add(expires).Truncate(time.Second)
	qp, err := sas.BlobSignatureValues{
		Protocol:           p.protocol,
		StartTime:          now.Add(-5 * time.Minute),
		ExpiryTime:         exp,
		Permissions:        perms.String(),
		ContainerName:      p.cfg.Container,
		BlobName:           key,
		ContentType:        ct,
		ContentDisposition: cd,
	}.SignWithSharedKey(p.cred)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("signing sas: %w", err)
	}
	return p.container.NewBlobClient(key).URL() + "?" + qp.Encode(), exp, nil
}

// PresignPut signs a Put Blob (create and write only).
func (p *Azure) PresignPut(_ context.Context, key string, pp PutParams) (Signed, error) {
	u, exp, err := p.sas(key, sas.BlobPermissions{Create: true, Write: true}, pp.Expires, "", "")
	if err != nil {
		return Signed{}, err
	}
	return Signed{URL: u, Method: "PUT", ExpiresAt: exp, Headers: map[string]string{
		"Content-Type": pp.ContentType, "X-Ms-Blob-Type": "BlockBlob",
	}}, nil
}

// PresignGet signs a read, with the answer's headers overridden.
func (p *Azure) PresignGet(_ context.Context, key string, gp GetParams) (Signed, error) {
	u, exp, err := p.sas(key, sas.BlobPermissions{Read: true}, gp.Expires, gp.ContentType, gp.ContentDisposition)
	if err != nil {
		return Signed{}, err
	}
	return Signed{URL: u, Method: "GET", ExpiresAt: exp, Headers: map[string]string{}}, nil
}

// Stat reads the blob's properties.
func (p *Azure) Stat(ctx context.Context, key string) (Info, error) {
	props, err := p.container.NewBlobClient(key).GetProperties(ctx, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
		return Info{}, ErrNotFound
	}
	if err != nil {
		return Info{}, fmt.Errorf("blob properties: %w", err)
	}
	info := Info{}
	if props.ContentLength != nil {
		info.Size = *props.ContentLength
	}
	if props.ContentType != nil {
		info.ContentType = *props.ContentType
	}
	if props.ETag != nil {
		info.ETag = strings.Trim(string(*props.ETag), `"`)
	}
	return info, nil
}

// Delete deletes the blob and its snapshots.
func (p *Azure) Delete(ctx context.Context, key string) error {
	inc := azb.DeleteSnapshotsOptionTypeInclude
	_, err := p.container.NewBlobClient(key).Delete(ctx, &azb.DeleteOptions{DeleteSnapshots: &inc})
	if err != nil && !bloberror.HasCode(err, bloberror.BlobNotFound) {
		return fmt.Errorf("deleting blob: %w", err)
	}
	return nil
}

// CreateMultipart makes an upload id; Azure keeps uncommitted blocks by
// themselves, so there is nothing to create.
func (p *Azure) CreateMultipart(context.Context, string, string) (string, error) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b), nil
}

func blockID(uploadID string, n int) string {
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%s-%05d", uploadID, n)))
}

// PresignPart signs a Put Block of part n.
func (p *Azure) PresignPart(_ context.Context, key, uploadID string, n int, _ int64, expires time.Duration) (Signed, error) {
	u, exp, err := p.sas(key, sas.BlobPermissions{Write: true}, expires, "", "")
	if err != nil {
		return Signed{}, err
	}
	u += "&comp=block&blockid=" + url.QueryEscape(blockID(uploadID, n))
	return Signed{URL: u, Method: "PUT", ExpiresAt: exp, Headers: map[string]string{}}, nil
}

// CompleteMultipart commits the blocks of the listed parts, in order.
func (p *Azure) CompleteMultipart(ctx context.Context, key, uploadID, contentType string, parts []Part) error {
	parts = append([]Part(nil), parts...)
	sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
	ids := make([]string, len(parts))
	for i, pt := range parts {
		ids[i] = blockID(uploadID, pt.Number)
	}
	_, err := p.container.NewBlockBlobClient(key).CommitBlockList(ctx, ids, &blockblob.CommitBlockListOptions{
		HTTPHeaders: &azb.HTTPHeaders{BlobContentType: &contentType},
	})
	if bloberror.HasCode(err, bloberror.InvalidBlockList, bloberror.InvalidBlockID) {
		return fmt.Errorf("%w: %v", ErrPartMismatch, err)
	}
	if err != nil {
		return fmt.Errorf("committing blocks: %w", err)
	}
	return nil
}

// AbortMultipart has nothing to drop: Azure discards uncommitted blocks
// itself (after seven days) and they are never visible as a blob.
func (p *Azure) AbortMultipart(context.Context, string, string) error { return nil }
