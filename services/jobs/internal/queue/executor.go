package queue

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The executor: every delivery of the queue's consumers ends here. The
// code that takes a delivery through its job (intake, run and decide,
// admit, park, the delayed consumer) returns what becomes of it, an
// outcome; settle is the one place where a message is acknowledged, handed
// back or terminated, and keepAlive the one place where it is kept in hand.
// A final record has to be durable before its message is acknowledged, so
// a job that ends in a final record returns held and its finisher settles
// it once the record is written (conclude).

// verdict is what settle does with a message.
type verdict uint8

const (
	// held: nothing now. The message is in someone's hands: the
	// scheduler's, a finisher's, or no one's after a crash (JetStream
	// redelivers it after the ack wait).
	held verdict = iota
	// done: acknowledged; the job is finished or the message is stale.
	done
	// again: handed back, to be delivered again after the delay.
	again
	// dropped: terminated; the job failed for good (or the message is
	// undecodable).
	dropped
)

// outcome is a delivery's fate.
type outcome struct {
	v      verdict
	delay  time.Duration
	reason string
}

var (
	holdIt = outcome{v: held}
	ackIt  = outcome{v: done}
)

// retryIn hands the message back for a delivery after d.
func retryIn(d time.Duration) outcome { return outcome{v: again, delay: d} }

// terminate ends the message for good, with the reason JetStream keeps.
func terminate(reason string) outcome { return outcome{v: dropped, reason: truncate(reason, 200)} }

// settle applies an outcome to its message.
func settle(m jetstream.Msg, o outcome) {
	switch o.v {
	case done:
		_ = m.Ack()
	case again:
		if o.delay <= 0 {
			_ = m.Nak()
			return
		}
		_ = m.NakWithDelay(o.delay)
	case dropped:
		_ = m.TermWithReason(o.reason)
	}
}

// keepAlive tells JetStream that a message is in hand (waiting for a
// worker, or its job running), so that it is not delivered again.
func keepAlive(m jetstream.Msg) { _ = m.InProgress() }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
