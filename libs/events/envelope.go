package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// SpecVersion is the CloudEvents version of every envelope.
const SpecVersion = "1.0"

// Event is a CloudEvents 1.0 envelope in structured JSON mode. Its ID is also
// the Nats-Msg-Id header of the message that carries it, so JetStream drops a
// duplicate publish inside the stream's dedupe window.
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	DataSchema      string          `json:"dataschema,omitempty"`
	OrganizationID  string          `json:"organizationid,omitempty"`
	ProjectID       string          `json:"projectid,omitempty"`
	Data            json.RawMessage `json:"data"`
}

// New builds an envelope around data, which is marshalled to JSON. Its
// dataschema is DataSchema(typ) and its time t in UTC, to the millisecond;
// the publisher sets Subject to the resource the event is about (the upload,
// job or file id).
func New(id, source, typ string, t time.Time, org, project string, data any) (Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("encoding %s data: %w", typ, err)
	}
	return Event{
		SpecVersion:     SpecVersion,
		ID:              id,
		Source:          source,
		Type:            typ,
		Time:            t.UTC().Truncate(time.Millisecond),
		DataContentType: "application/json",
		DataSchema:      DataSchema(typ),
		OrganizationID:  org,
		ProjectID:       project,
		Data:            raw,
	}, nil
}

// wireEvent is Event as it is encoded: time in TimeLayout, always three
// decimals, so every event carries one precision.
type wireEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	DataSchema      string          `json:"dataschema,omitempty"`
	OrganizationID  string          `json:"organizationid,omitempty"`
	ProjectID       string          `json:"projectid,omitempty"`
	Data            json.RawMessage `json:"data"`
}

// MarshalJSON encodes the envelope with its time in UTC to the millisecond
// (TimeLayout).
func (e Event) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireEvent{
		SpecVersion: e.SpecVersion, ID: e.ID, Source: e.Source, Type: e.Type, Subject: e.Subject,
		Time: e.Time.UTC().Format(TimeLayout), DataContentType: e.DataContentType, DataSchema: e.DataSchema,
		OrganizationID: e.OrganizationID, ProjectID: e.ProjectID, Data: e.Data,
	})
}

// Decode parses an envelope and checks its required attributes.
func Decode(b []byte) (Event, error) {
	e, ok := decodeFast(b)
	if !ok {
		e = Event{}
		if err := json.Unmarshal(b, &e); err != nil {
			return Event{}, fmt.Errorf("decoding event: %w", err)
		}
	}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// DecodeInto decodes an envelope and its data into data (a pointer) in one
// pass, for hot paths: the returned Event carries no raw Data.
func DecodeInto(b []byte, data any) (Event, error) {
	var e struct {
		Event
		Data any `json:"data"`
	}
	e.Data = data
	if err := json.Unmarshal(b, &e); err != nil {
		return Event{}, fmt.Errorf("decoding event: %w", err)
	}
	if err := e.Event.Validate(); err != nil {
		return Event{}, err
	}
	return e.Event, nil
}

// Validate checks the attributes CloudEvents requires.
func (e Event) Validate() error {
	var errs []error
	if e.SpecVersion != SpecVersion {
		errs = append(errs, fmt.Errorf("specversion %q is not %q", e.SpecVersion, SpecVersion))
	}
	if e.ID == "" {
		errs = append(errs, errors.New("id is empty"))
	}
	if e.Source == "" {
		errs = append(errs, errors.New("source is empty"))
	}
	if e.Type == "" {
		errs = append(errs, errors.New("type is empty"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid event: %w", errors.Join(errs...))
	}
	return nil
}

// DataAs decodes the event data into v.
func (e Event) DataAs(v any) error {
	if r, ok := v.(*Received); ok && decodeReceivedFast(e.Data, r) {
		return nil
	}
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("decoding %s data: %w", e.Type, err)
	}
	return nil
}
