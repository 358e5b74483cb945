package irc

import (
	"context"
	"log/slog"
	"sync"

	"github.com/lrstanley/girc"
	"golang.org/x/time/rate"

	"passerelle.dev/passerelle/transports"
)

// outQueueSize bounds the lines waiting to be sent on one connection.
const outQueueSize = 1000

// outQueue paces the lines of one connection under the network's flood
// limits, in a goroutine of its own, so that no caller ever waits for the
// network (girc's own flood control would block the caller). Most
// connections are idle most of the time, so the queue costs nothing while
// empty: the waiting lines are a slice that grows with use and is dropped
// once sent (rather than a channel with room for outQueueSize lines), and
// the goroutine runs only while lines wait.
type outQueue struct {
	c       *girc.Client
	log     *slog.Logger
	limiter *rate.Limiter
	ctx     context.Context
	cancel  context.CancelFunc
	once    sync.Once

	mu      sync.Mutex
	pending []*girc.Event
	running bool // a sender goroutine is draining pending
}

func newOutQueue(c *girc.Client, perSecond float64, burst int, log *slog.Logger) *outQueue {
	ctx, cancel := context.WithCancel(context.Background())
	q := &outQueue{
		c:       c,
		log:     log,
		limiter: rate.NewLimiter(rate.Limit(perSecond), burst),
		ctx:     ctx,
		cancel:  cancel,
	}
	return q
}

// push queues a line, or fails at once when too many wait.
func (q *outQueue) push(e *girc.Event) error {
	q.mu.Lock()
	if len(q.pending) >= outQueueSize {
		q.mu.Unlock()
		return transports.Errorf(transports.RateLimited, "too many lines waiting for the IRC server; slow down")
	}
	q.pending = append(q.pending, e)
	if !q.running {
		q.running = true
		go q.run()
	}
	q.mu.Unlock()
	return nil
}

// run sends the waiting lines, paced, and returns once none is left. A
// panic (in girc, on a line) costs that line: the queue goes on.
func (q *outQueue) run() {
	for q.runSafely() {
	}
}

// runSafely sends lines until none is left (false) or one panics (true).
func (q *outQueue) runSafely() (again bool) {
	defer func() {
		if r := recover(); r != nil {
			q.log.Error("irc: panic sending a line", "panic", r)
			again = true
		}
	}()
	for {
		q.mu.Lock()
		if len(q.pending) == 0 || q.ctx.Err() != nil {
			q.pending = nil // let the backing array go
			q.running = false
			q.mu.Unlock()
			return false
		}
		e := q.pending[0]
		q.pending[0] = nil
		q.pending = q.pending[1:]
		q.mu.Unlock()
		if err := q.limiter.Wait(q.ctx); err != nil {
			continue // stopped: the next turn drops the rest
		}
		q.c.Send(e)
	}
}

// quit sends QUIT ahead of anything still waiting.
func (q *outQueue) quit(reason string) {
	q.c.Send(&girc.Event{Command: girc.QUIT, Params: []string{sanitizeLine(reason)}})
}

func (q *outQueue) stop() {
	if q == nil {
		return
	}
	q.once.Do(q.cancel)
}
