package bus_test

import (
	"strings"
	"testing"
	"time"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/natstest"
)

// A connection the server closes for good (here by an over-long control
// line) is reported, naming it and the cause.
func TestLifelineReportsAConnectionLostForGood(t *testing.T) {
	t.Parallel()
	nb := natstest.Start(t)
	l := bus.NewLifeline()
	victim := natstest.Connect(t, nb.URL)
	l.Watch("victim", victim)
	if err := l.Err(); err != nil {
		t.Fatalf("before any close: %v", err)
	}
	_ = victim.Publish(strings.Repeat("x", 5000), nil)
	select {
	case <-l.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("the connection closed by the server was not reported")
	}
	if err := l.Err(); err == nil || !strings.Contains(err.Error(), "victim") {
		t.Fatalf("Err = %v, want the lost connection named", err)
	}

}
