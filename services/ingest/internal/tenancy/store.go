// Package tenancy owns organizations, projects and API keys. A key is shown
// once, when it is created, and stored only as its SHA-256 hash.
package tenancy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/mongodb"
)

// Collections owned by the gateway.
const (
	OrganizationsCollection = "organizations"
	ProjectsCollection      = "projects"
	KeysCollection          = "api_keys"
)

// Scopes a key can carry.
const (
	// ScopeSync lets a key upload and read its project's results, files and jobs.
	ScopeSync = "sync"
	// ScopeAdmin adds key management, queue control and organization-wide
	// reads, all within the key's own organization.
	ScopeAdmin = "admin"
	// ScopeOperator is the deployment's own: it acts on every organization
	// (creating keys for any of them). No API request can grant it; only the
	// server side does, to the bootstrap key and to serve's own key in its
	// data directory.
	ScopeOperator = "operator"
)

// ValidScope reports whether s is a scope an API request may grant.
func ValidScope(s string) bool { return s == ScopeSync || s == ScopeAdmin }

// Key is a stored API key (its hash, never the key).
type Key struct {
	ID             string    `bson:"_id"`
	Hash           string    `bson:"hash"`
	OrganizationID string    `bson:"organizationId"`
	ProjectID      string    `bson:"projectId"`
	Scopes         []string  `bson:"scopes"`
	Name           string    `bson:"name,omitempty"`
	CreatedAt      time.Time `bson:"createdAt"`
	Revoked        bool      `bson:"revoked"`
}

// Has reports whether the key carries scope.
func (k Key) Has(scope string) bool { return slices.Contains(k.Scopes, scope) }

// Store reads and writes tenants and keys.
type Store struct {
	db  *mongo.Database
	now func() time.Time
	ttl time.Duration

	// Known keys are remembered for ttl, so a request does not read the
	// store to authenticate; a revocation takes effect within it. While the
	// store does not answer, a known key stays known: an upload's
	// durability is JetStream's, and CI pipelines keep uploading through a
	// store outage.
	mu    sync.Mutex
	cache map[string]cached
	// projects are the projects (org + "/" + project) known to exist.
	// Projects are never deleted, so a known one stays known — also while
	// the store is away.
	projects map[string]bool
}

type cached struct {
	key     Key
	expires time.Time
}

// CacheTTL is how long an authenticated key is remembered by default.
const CacheTTL = 15 * time.Second

// staleLookup bounds a lookup of a key that is remembered but expired: when
// the store does not answer within it, the remembered key is used, and the
// store is asked again only after outageRetry.
const (
	staleLookup = 500 * time.Millisecond
	outageRetry = 2 * time.Second
)

// New returns a Store over db that remembers keys for ttl (CacheTTL when 0).
func New(db *mongo.Database, ttl time.Duration) *Store {
	if ttl <= 0 {
		ttl = CacheTTL
	}
	return &Store{db: db, now: time.Now, ttl: ttl, cache: map[string]cached{}, projects: map[string]bool{}}
}

// Indexes are the store's indexes.
func Indexes() []mongodb.Index {
	return []mongodb.Index{
		{Collection: KeysCollection, Name: "hash", Unique: true, Keys: bson.D{{Key: "hash", Value: 1}}},
		{Collection: ProjectsCollection, Name: "org", Keys: bson.D{{Key: "organizationId", Value: 1}}},
	}
}

// ErrUnknownKey is returned by Authenticate for a key that does not exist or was revoked.
var ErrUnknownKey = errors.New("unknown API key")

// HashKey is the stored form of a key.
func HashKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

// Authenticate returns the key whose hash matches key.
func (s *Store) Authenticate(ctx context.Context, key string) (Key, error) {
	h := HashKey(key)
	now := s.now()
	s.mu.Lock()
	c, known := s.cache[h]
	s.mu.Unlock()
	if known && now.Before(c.expires) {
		return c.key, nil
	}
	lctx := ctx
	if known {
		var cancel context.CancelFunc
		lctx, cancel = context.WithTimeout(ctx, staleLookup)
		defer cancel()
	}
	var k Key
	err := s.db.Collection(KeysCollection).FindOne(lctx, bson.D{{Key: "hash", Value: h}}).Decode(&k)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments) || (err == nil && k.Revoked):
		s.mu.Lock()
		delete(s.cache, h)
		s.mu.Unlock()
		return Key{}, ErrUnknownKey
	case err != nil && known && ctx.Err() == nil:
		// The store is away: the key it confirmed stays valid until it
		// answers again.
		s.remember(h, c.key, now.Add(outageRetry))
		return c.key, nil
	case err != nil:
		return Key{}, fmt.Errorf("looking up key: %w", err)
	}
	s.remember(h, k, now.Add(s.ttl))
	return k, nil
}

func (s *Store) remember(h string, k Key, until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.cache[h]; !ok && len(s.cache) > 10000 {
		clear(s.cache) // only known keys are cached; this bounds it all the same
	}
	s.cache[h] = cached{key: k, expires: until}
}

// Remembered reports whether key is a known key: authenticating it will not
// wait for the store's answer to a key it never saw.
func (s *Store) Remembered(key string) bool {
	s.mu.Lock()
	_, ok := s.cache[HashKey(key)]
	s.mu.Unlock()
	return ok
}

// ErrUnknownProject is returned by CheckProject for a project of the
// organization that was never created.
var ErrUnknownProject = errors.New("unknown project")

// CheckProject reports whether the organization's project exists: nil when
// it does, ErrUnknownProject when it does not, another error when the store
// cannot say. A project once seen is remembered, so a request for it does
// not read the store, and keeps working while the store is away.
func (s *Store) CheckProject(ctx context.Context, org, project string) error {
	pid := org + "/" + project
	s.mu.Lock()
	known := s.projects[pid]
	s.mu.Unlock()
	if known {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, projectLookup)
	defer cancel()
	err := s.db.Collection(ProjectsCollection).FindOne(ctx, bson.D{{Key: "_id", Value: pid}}).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("%w: %s", ErrUnknownProject, pid)
	}
	if err != nil {
		return fmt.Errorf("looking up project %s: %w", pid, err)
	}
	s.rememberProject(pid)
	return nil
}

// projectLookup bounds the lookup of a project not yet seen, so a request
// for one during a store outage is answered (503) rather than left waiting.
const projectLookup = 2 * time.Second

func (s *Store) rememberProject(pid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.projects) > 100000 {
		clear(s.projects) // a bound all the same; they are read again
	}
	s.projects[pid] = true
}

// EnsureTenant creates the organization and the project when they do not exist.
func (s *Store) EnsureTenant(ctx context.Context, org, project string) error {
	if !events.ValidToken(org) || !events.ValidToken(project) {
		return fmt.Errorf("organization and project ids must be 1-64 letters, digits, '-' or '_'")
	}
	now := s.now().UTC()
	up := options.UpdateOne().SetUpsert(true)
	if _, err := s.db.Collection(OrganizationsCollection).UpdateOne(ctx, bson.D{{Key: "_id", Value: org}},
		bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "createdAt", Value: now}}}}, up); err != nil && !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("creating organization %s: %w", org, err)
	}
	pid := org + "/" + project
	if _, err := s.db.Collection(ProjectsCollection).UpdateOne(ctx, bson.D{{Key: "_id", Value: pid}},
		bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "organizationId", Value: org}, {Key: "projectId", Value: project}, {Key: "createdAt", Value: now}}}}, up); err != nil && !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("creating project %s: %w", pid, err)
	}
	s.rememberProject(pid)
	return nil
}

// CreateKey creates the tenant if needed and a new key for it, and returns
// the key itself — the only time it is seen — with its record.
func (s *Store) CreateKey(ctx context.Context, org, project, name string, scopes []string) (string, Key, error) {
	if len(scopes) == 0 {
		scopes = []string{ScopeSync}
	}
	for _, sc := range scopes {
		if !ValidScope(sc) && sc != ScopeOperator {
			return "", Key{}, fmt.Errorf("unknown scope %q (want %s or %s)", sc, ScopeSync, ScopeAdmin)
		}
	}
	if err := s.EnsureTenant(ctx, org, project); err != nil {
		return "", Key{}, err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", Key{}, fmt.Errorf("generating key: %w", err)
	}
	key := "odavl_" + base64.RawURLEncoding.EncodeToString(b[:])
	k := Key{
		ID: "key_" + HashKey(key)[:16], Hash: HashKey(key), OrganizationID: org, ProjectID: project,
		Scopes: scopes, Name: name, CreatedAt: s.now().UTC(),
	}
	if _, err := s.db.Collection(KeysCollection).InsertOne(ctx, k); err != nil {
		return "", Key{}, fmt.Errorf("storing key: %w", err)
	}
	return key, k, nil
}

// CountKeys counts the stored keys.
func (s *Store) CountKeys(ctx context.Context) (int64, error) {
	n, err := s.db.Collection(KeysCollection).CountDocuments(ctx, bson.D{})
	if err != nil {
		return 0, fmt.Errorf("counting keys: %w", err)
	}
	return n, nil
}

// EnsureKey stores key (given by an operator, for example from a Kubernetes
// Secret) for the tenant with scopes unless it is stored already. It lets a
// deployment start with an admin key it chose, without a first `serve`.
func (s *Store) EnsureKey(ctx context.Context, key, org, project string, scopes []string) error {
	if len(key) < 32 {
		return fmt.Errorf("a bootstrap key must be at least 32 characters")
	}
	if err := s.EnsureTenant(ctx, org, project); err != nil {
		return err
	}
	k := Key{
		ID: "key_" + HashKey(key)[:16], Hash: HashKey(key), OrganizationID: org, ProjectID: project,
		Scopes: scopes, Name: "bootstrap key", CreatedAt: s.now().UTC(),
	}
	_, err := s.db.Collection(KeysCollection).InsertOne(ctx, k)
	if mongo.IsDuplicateKeyError(err) {
		// Stored by an earlier start: it keeps its tenant and gains the
		// scopes it is given now (a key from before a scope existed).
		_, err = s.Grant(ctx, key, scopes...)
		return err
	}
	if err != nil {
		return fmt.Errorf("storing bootstrap key: %w", err)
	}
	return nil
}

// Grant adds scopes to an unrevoked key and reports whether there is one.
// It is for the server side only: the API never grants ScopeOperator.
func (s *Store) Grant(ctx context.Context, key string, scopes ...string) (bool, error) {
	h := HashKey(key)
	r, err := s.db.Collection(KeysCollection).UpdateOne(ctx,
		bson.D{{Key: "hash", Value: h}, {Key: "revoked", Value: false}},
		bson.D{{Key: "$addToSet", Value: bson.D{{Key: "scopes", Value: bson.D{{Key: "$each", Value: scopes}}}}}})
	if err != nil {
		return false, fmt.Errorf("granting scopes: %w", err)
	}
	s.mu.Lock()
	delete(s.cache, h)
	s.mu.Unlock()
	return r.MatchedCount > 0, nil
}

// Project is a project of an organization.
type Project struct {
	OrganizationID string    `bson:"organizationId" json:"organizationId"`
	ProjectID      string    `bson:"projectId" json:"projectId"`
	CreatedAt      time.Time `bson:"createdAt" json:"createdAt"`
}

// maxProjects bounds the projects Projects reads of one organization.
const maxProjects = 1000

// Projects lists the projects of org, by id.
func (s *Store) Projects(ctx context.Context, org string) ([]Project, error) {
	opts := options.Find().SetSort(bson.D{{Key: "projectId", Value: 1}}).SetLimit(maxProjects)
	cur, err := s.db.Collection(ProjectsCollection).Find(ctx, bson.D{{Key: "organizationId", Value: org}}, opts)
	if err != nil {
		return nil, fmt.Errorf("listing projects of %s: %w", org, err)
	}
	out := []Project{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("reading projects of %s: %w", org, err)
	}
	return out, nil
}
