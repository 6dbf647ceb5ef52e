package tenancy

import (
	"context"
	"slices"
	"testing"

	"github.com/odavl/sync/libs/mongodb"
	"github.com/odavl/sync/libs/mongotest"
)

// A deployment's own key stored before the operator scope existed (serve's
// key in its data directory, the bootstrap key) gains it at the next start,
// keeping its tenant; a revoked or unknown key gains nothing.
func TestServerKeysOfAnEarlierVersionBecomeOperatorKeys(t *testing.T) {
	ctx := context.Background()
	mb := mongotest.Start(t)
	if err := mongodb.EnsureIndexes(ctx, mb.DB, Indexes()); err != nil {
		t.Fatal(err)
	}
	s := New(mb.DB, 0)
	old, _, err := s.CreateKey(ctx, "local", "default", "first admin key", []string{ScopeAdmin, ScopeSync})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Grant(ctx, old, ScopeOperator); !ok || err != nil {
		t.Fatalf("Grant: %v %v", ok, err)
	}
	k, err := s.Authenticate(ctx, old)
	if err != nil || !k.Has(ScopeOperator) || !k.Has(ScopeAdmin) || k.OrganizationID != "local" {
		t.Fatalf("after Grant: %+v %v, want an operator key of local", k, err)
	}
	if ok, err := s.Grant(ctx, "odavl_never-issued-key-0123456789abcdef", ScopeOperator); ok || err != nil {
		t.Errorf("Grant of an unknown key: %v %v, want false", ok, err)
	}

	const boot = "odavl_operator-chosen-key-0123456789abcdef"
	if err := s.EnsureKey(ctx, boot, "acme", "ops", []string{ScopeAdmin, ScopeSync}); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureKey(ctx, boot, "acme", "ops", []string{ScopeAdmin, ScopeSync, ScopeOperator}); err != nil {
		t.Fatal(err)
	}
	if k, err := s.Authenticate(ctx, boot); err != nil || !k.Has(ScopeOperator) || len(k.Scopes) != 3 {
		t.Fatalf("bootstrap key ensured again: %+v %v, want admin, sync and operator", k, err)
	}
}

// Projects lists an organization's projects by id, each once, and none of
// another organization.
func TestProjectsListsTheOrganizationsProjects(t *testing.T) {
	ctx := context.Background()
	mb := mongotest.Start(t)
	s := New(mb.DB, 0)
	for _, tn := range [][2]string{{"acme", "web"}, {"acme", "api"}, {"acme", "web"}, {"other", "secret"}} {
		if err := s.EnsureTenant(ctx, tn[0], tn[1]); err != nil {
			t.Fatal(err)
		}
	}
	ps, err := s.Projects(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range ps {
		if p.OrganizationID != "acme" || p.CreatedAt.IsZero() {
			t.Errorf("project %+v", p)
		}
		ids = append(ids, p.ProjectID)
	}
	if want := []string{"api", "web"}; !slices.Equal(ids, want) {
		t.Errorf("projects %v, want %v", ids, want)
	}
	if ps, err := s.Projects(ctx, "nobody"); err != nil || ps == nil || len(ps) != 0 {
		t.Errorf("projects of an unknown organization: %v %v, want an empty list", ps, err)
	}
}
