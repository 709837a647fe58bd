package audit

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Event is one access to patient data through the FHIR API: who (client,
// user), what (interaction, resources or query, patients), when, from
// where, and how it ended.
type Event struct {
	// Time is when the request was answered.
	Time time.Time
	// Interaction is the FHIR restful interaction (read, vread,
	// search-type, search-system, history-instance, history-type,
	// history-system, create, update, patch, delete, batch, transaction)
	// or "export"; "unknown" for a request that never reached one (a
	// refused token, a malformed URL).
	Interaction string
	// Type is the resource type of the request's URL; "" at system level.
	Type string
	// Resources are the resources returned or written, as "Type/id",
	// each once and at most MaxResources of them.
	Resources []string
	// Query is the query string of a search or history request.
	Query string
	// Patients are the ids of the patients whose data the request
	// touched, each once.
	Patients []string
	// Status is the HTTP status of the answer: 2xx and 3xx are successes,
	// 401, 403 and 404 are denials or misses, 5xx server failures.
	Status int
	// ClientID, Username and FHIRUser name the token's client and user
	// (Username and FHIRUser are empty for Backend Services tokens, all
	// three for a request without a valid token).
	ClientID, Username, FHIRUser string
	// Source is the network address the request came from.
	Source string
	// RequestID is the X-Request-ID of the request, for finding it in the
	// server's logs.
	RequestID string
}

// MaxResources bounds Event.Resources: a search page or a Bundle lists at
// most this many (a page is bounded by the maximum _count anyway).
const MaxResources = 1000

// Sink stores events; the database's audit table implements it. Append
// must store all of events or none.
type Sink interface {
	Append(ctx context.Context, events []Event) error
}

// Options tune a Log; zero values take the defaults.
type Options struct {
	// Interval is the longest an event waits before it is written
	// (default 200 ms).
	Interval time.Duration
	// Batch is how many waiting events make a write start at once
	// (default 1,000).
	Batch int
	// MaxPending is how many unwritten events may wait before Record
	// blocks its caller until they are written (default 100,000): when
	// the database cannot keep up or is down, requests slow down rather
	// than lose audit records.
	MaxPending int
}

// Log writes events to a Sink in batches from one background goroutine,
// so that a request pays for appending to a slice, not for a database
// write. Nothing is dropped: Record blocks while MaxPending events wait,
// and Close writes what is left.
type Log struct {
	sink   Sink
	log    *slog.Logger
	opt    Options
	mu     sync.Mutex
	cond   *sync.Cond // signalled when pending shrinks or closing
	buf    []Event
	kick   chan struct{}
	closed bool
	done   chan struct{}
	// written counts the events stored, failures the batches that failed
	// (and were retried), for metrics and tests.
	written, failures int64
}

// New starts a Log writing to sink.
func New(sink Sink, logger *slog.Logger, opt Options) *Log {
	if opt.Interval <= 0 {
		opt.Interval = 200 * time.Millisecond
	}
	if opt.Batch <= 0 {
		opt.Batch = 1000
	}
	if opt.MaxPending < opt.Batch {
		opt.MaxPending = max(100_000, opt.Batch)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{sink: sink, log: logger, opt: opt, kick: make(chan struct{}, 1), done: make(chan struct{})}
	l.cond = sync.NewCond(&l.mu)
	go l.run()
	return l
}

// ErrClosed is Record's answer after Close.
var ErrClosed = errors.New("audit log is closed")

// Record queues e for writing. It blocks only while MaxPending events
// wait. After Close it answers ErrClosed and e is not recorded.
func (l *Log) Record(e Event) error {
	l.mu.Lock()
	for len(l.buf) >= l.opt.MaxPending && !l.closed {
		l.cond.Wait()
	}
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.buf = append(l.buf, e)
	n := len(l.buf)
	l.mu.Unlock()
	if n >= l.opt.Batch {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// Stats reports how many events were written and how many batch writes
// failed (each failed batch is retried).
func (l *Log) Stats() (written, failures int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.written, l.failures
}

// Close stops accepting events and writes those still waiting, trying
// until ctx ends.
func (l *Log) Close(ctx context.Context) error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		l.cond.Broadcast()
	}
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	select {
	case <-l.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.buf); n > 0 {
		return errors.New("audit log closed with unwritten events")
	}
	return nil
}

// run writes batches until the Log is closed and empty. A failed batch
// stays queued and is retried with a growing pause (at most 5 s).
func (l *Log) run() {
	defer close(l.done)
	t := time.NewTicker(l.opt.Interval)
	defer t.Stop()
	pause := l.opt.Interval
	for {
		select {
		case <-t.C:
		case <-l.kick:
		}
		for {
			l.mu.Lock()
			n := min(len(l.buf), l.opt.Batch)
			batch := l.buf[:n:n]
			closed := l.closed
			l.mu.Unlock()
			if n == 0 {
				if closed {
					return
				}
				break
			}
			err := l.sink.Append(context.Background(), batch)
			l.mu.Lock()
			if err != nil {
				l.failures++
			} else {
				l.written += int64(n)
				// Copy the rest down so the buffer does not grow forever.
				rest := copy(l.buf, l.buf[n:])
				clear(l.buf[rest:])
				l.buf = l.buf[:rest]
				l.cond.Broadcast()
			}
			l.mu.Unlock()
			if err != nil {
				// No PHI in the message: the error is the database's.
				l.log.Error("writing audit records failed; retrying", "events", n, "err", err)
				if closed && pause >= 5*time.Second {
					return
				}
				time.Sleep(pause)
				pause = min(2*pause, 5*time.Second)
				continue
			}
			pause = l.opt.Interval
			if n < l.opt.Batch && !closed {
				break
			}
		}
	}
}
