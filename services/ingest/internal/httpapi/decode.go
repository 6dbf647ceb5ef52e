package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// decodeStrict decodes a JSON object into v, refusing unknown fields.
func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("invalid body: %w", err)
	}
	return nil
}
