package types

// ODAVL patch 11: read access to a document's fields and an array's
// elements in order, without the copies Keys, Values and the iterators
// make (for bson.AppendDocument).

// Field returns the key and value of the i-th field, 0 ≤ i < Len().
func (d *Document) Field(i int) (string, any) {
	f := d.fields[i]
	return f.key, f.value
}

// Elem returns the i-th element, 0 ≤ i < Len().
func (a *Array) Elem(i int) any { return a.s[i] }
