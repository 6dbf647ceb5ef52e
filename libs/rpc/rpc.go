// Package rpc carries the services' queries and commands over NATS
// request/reply, using the micro package of nats.go (discovery, load
// balancing and per-endpoint stats come with it). Requests and answers are
// JSON; a failure travels as an *Error with an HTTP-like status, so the
// gateway maps it to its answer without knowing the service.
package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"
)

// transient reports whether err is NATS or JetStream not answering for a
// moment (a stream electing its leader, a server restarting, a connection
// reconnecting): the request may succeed when retried.
func transient(err error) bool {
	for _, t := range []error{nats.ErrTimeout, nats.ErrNoResponders, jetstream.ErrNoStreamResponse, nats.ErrConnectionReconnecting,
		nats.ErrDisconnected, context.DeadlineExceeded} {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// Error is a failure answered by a service.
type Error struct {
	Status  int          `json:"status"`
	Message string       `json:"message"`
	Fields  []FieldError `json:"fields,omitempty"`
}

// FieldError names one bad field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("%d: %s", e.Status, e.Message) }

// Errorf returns an *Error with status and a formatted message.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// NotFound, BadRequest, Conflict and Forbidden are the common failures.
func NotFound(format string, args ...any) *Error { return Errorf(http.StatusNotFound, format, args...) }

// BadRequest is a 400 failure.
func BadRequest(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, format, args...)
}

// Conflict is a 409 failure.
func Conflict(format string, args ...any) *Error { return Errorf(http.StatusConflict, format, args...) }

// Forbidden is a 403 failure.
func Forbidden(format string, args ...any) *Error {
	return Errorf(http.StatusForbidden, format, args...)
}

// StatusOf returns the status an error maps to: its own for an *Error, 500 otherwise.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return http.StatusInternalServerError
}

// Raw is an answer already encoded as JSON: Handler sends it as it is and
// CallRaw returns it as it came, so that a page of large documents is not
// decoded and encoded again on its way (ListResultsResponse).
type Raw []byte

// Func is a typed endpoint.
type Func[Req, Resp any] func(ctx context.Context, req Req) (Resp, error)

// Work stops when its caller gives up. A request carries its caller's
// deadline (HeaderDeadline, Unix milliseconds) and an id (HeaderRequestID);
// a caller that stops waiting before the answer publishes the id on
// CancelSubject, and every service cancels the context of that request: its
// store query ends with it.
const (
	HeaderDeadline  = "Odavl-Deadline"
	HeaderRequestID = "Odavl-Request-Id"
	CancelSubject   = "odavl.rpc.v1.cancel"
)

// StatusClientClosed answers a request whose caller left (nginx's 499):
// nobody reads it.
const StatusClientClosed = 499

// inflight maps the ids of requests being handled in this process to their
// cancel functions.
var inflight sync.Map

// Handler adapts f to a micro handler. Each request gets a context bounded by
// timeout under base and by its caller's deadline, cancelled when its caller
// gives up. A request that does not decode is a 400; a deadline that fires is
// a 504; another error that is not an *Error is logged and answered as a 500
// without its detail.
func Handler[Req, Resp any](base context.Context, log *slog.Logger, timeout time.Duration, f Func[Req, Resp]) micro.Handler {
	return micro.HandlerFunc(func(r micro.Request) {
		var req Req
		if len(r.Data()) > 0 {
			if err := json.Unmarshal(r.Data(), &req); err != nil {
				respondErr(r, BadRequest("decoding request: %v", err))
				return
			}
		}
		ctx, cancel := context.WithTimeout(base, timeout)
		defer cancel()
		if ms, err := strconv.ParseInt(r.Headers().Get(HeaderDeadline), 10, 64); err == nil {
			var cancelAt context.CancelFunc
			ctx, cancelAt = context.WithDeadline(ctx, time.UnixMilli(ms))
			defer cancelAt()
		}
		if id := r.Headers().Get(HeaderRequestID); id != "" {
			var cancelReq context.CancelFunc
			ctx, cancelReq = context.WithCancel(ctx)
			inflight.Store(id, cancelReq)
			defer inflight.Delete(id)
		}
		resp, err := f(ctx, req)
		if err != nil {
			var e *Error
			switch {
			case errors.As(err, &e):
			case errors.Is(ctx.Err(), context.DeadlineExceeded):
				e = Errorf(http.StatusGatewayTimeout, "%s: no answer within the request's deadline", r.Subject())
			case ctx.Err() != nil && base.Err() == nil:
				e = Errorf(StatusClientClosed, "%s: the caller gave up", r.Subject())
			case transient(err):
				// JetStream electing a leader, a server restarting:
				// the caller may retry.
				log.Warn("request failed, retryable", "subject", r.Subject(), "err", err)
				e = Errorf(http.StatusServiceUnavailable, "%s: temporarily unavailable (%v); retry", r.Subject(), err)
			default:
				log.Error("request failed", "subject", r.Subject(), "err", err)
				e = Errorf(http.StatusInternalServerError, "internal error")
			}
			respondErr(r, e)
			return
		}
		if raw, ok := any(resp).(Raw); ok {
			err = r.Respond(raw)
		} else {
			var b []byte
			if b, err = marshal(resp); err == nil {
				err = r.Respond(b)
			}
		}
		if err != nil {
			log.Error("responding", "subject", r.Subject(), "err", err)
		}
	})
}

// marshal is json.Marshal without its HTML escaping: an answer's &, < and >
// stay as they are (a URL in a stored result), as the gateway passes the
// answer on and writes its own.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding answer: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func respondErr(r micro.Request, e *Error) {
	b, _ := json.Marshal(e)
	_ = r.Error(strconv.Itoa(e.Status), e.Message, b)
}

// Call sends req to subject and decodes the answer into a Resp; a service
// failure comes back as an *Error. No responder is a 503 *Error.
func Call[Resp any](ctx context.Context, nc *nats.Conn, subject string, req any) (Resp, error) {
	var resp Resp
	b, err := CallRaw(ctx, nc, subject, req)
	if err != nil {
		return resp, err
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		return resp, fmt.Errorf("decoding answer of %s: %w", subject, err)
	}
	return resp, nil
}

// CallRaw is Call without decoding the answer: its JSON as the service wrote it.
func CallRaw(ctx context.Context, nc *nats.Conn, subject string, req any) (Raw, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding request for %s: %w", subject, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	id := nuid.Next()
	m := nats.NewMsg(subject)
	m.Data = b
	m.Header.Set(HeaderDeadline, strconv.FormatInt(deadline.UnixMilli(), 10))
	m.Header.Set(HeaderRequestID, id)
	msg, err := nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, Errorf(http.StatusServiceUnavailable, "%s: no service answers", subject)
		}
		if ctx.Err() != nil {
			// The service may still be at it: tell it to stop.
			_ = nc.Publish(CancelSubject, []byte(id))
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
			return nil, Errorf(http.StatusGatewayTimeout, "%s: no answer in time", subject)
		}
		if errors.Is(err, context.Canceled) {
			return nil, Errorf(StatusClientClosed, "%s: the caller gave up", subject)
		}
		return nil, fmt.Errorf("requesting %s: %w", subject, err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		var e Error
		if json.Unmarshal(msg.Data, &e) != nil || e.Status == 0 {
			st, _ := strconv.Atoi(code)
			e = Error{Status: st, Message: msg.Header.Get(micro.ErrorHeader)}
		}
		return nil, &e
	}
	return msg.Data, nil
}

// Endpoint is one named endpoint of a service.
type Endpoint struct {
	Name    string
	Subject string
	Handler micro.Handler
}

// AddService starts a micro service with the given endpoints.
func AddService(nc *nats.Conn, name, version, description string, eps []Endpoint) (micro.Service, error) {
	// Every instance hears every cancellation; it cancels the requests it
	// is handling.
	cancels, err := nc.Subscribe(CancelSubject, func(m *nats.Msg) {
		if cancel, ok := inflight.Load(string(m.Data)); ok {
			cancel.(context.CancelFunc)()
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribing %s to cancellations: %w", name, err)
	}
	svc, err := micro.AddService(nc, micro.Config{Name: name, Version: version, Description: description, QueueGroup: name,
		DoneHandler: func(micro.Service) { _ = cancels.Unsubscribe() }})
	if err != nil {
		_ = cancels.Unsubscribe()
		return nil, fmt.Errorf("adding service %s: %w", name, err)
	}
	for _, ep := range eps {
		if err := svc.AddEndpoint(ep.Name, ep.Handler, micro.WithEndpointSubject(ep.Subject)); err != nil {
			_ = svc.Stop()
			return nil, fmt.Errorf("adding endpoint %s: %w", ep.Name, err)
		}
	}
	if err := nc.Flush(); err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("flushing subscriptions of %s: %w", name, err)
	}
	return svc, nil
}
