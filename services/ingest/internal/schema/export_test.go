package schema

import "github.com/odavl/sync/libs/events"

// FastCanonical and FullCanonical are the two paths of Canonical, for the
// test that they agree.
func (v *Validator) FastCanonical(p events.Product, org, project string, body []byte) ([]byte, bool) {
	return v.fastCanonical(nil, p, org, project, body)
}

func (v *Validator) FullCanonical(p events.Product, org, project string, body []byte) (Report, []byte) {
	return v.fullCanonical(p, org, project, body)
}
