package irc

import (
	"context"
	"sync"

	"github.com/lrstanley/girc"
	"golang.org/x/time/rate"

	"passerelle.dev/passerelle/transports"
)

// outQueueSize bounds the lines waiting to be sent on one connection.
const outQueueSize = 1000

// outQueue paces the lines of one connection under the network's flood
// limits, in its own goroutine, so that no caller ever waits for the
// network (girc's own flood control would block the caller). The waiting
// lines are a slice that grows with use and is dropped once sent, rather
// than a channel that would hold room for outQueueSize lines on every
// connection, most of them idle.
type outQueue struct {
	c       *girc.Client
	limiter *rate.Limiter
	ctx     context.Context
	cancel  context.CancelFunc
	once    sync.Once

	mu      sync.Mutex
	pending []*girc.Event
	wake    chan struct{} // signalled when pending becomes non-empty
}

func newOutQueue(c *girc.Client, perSecond float64, burst int) *outQueue {
	ctx, cancel := context.WithCancel(context.Background())
	q := &outQueue{
		c:       c,
		limiter: rate.NewLimiter(rate.Limit(perSecond), burst),
		ctx:     ctx,
		cancel:  cancel,
		wake:    make(chan struct{}, 1),
	}
	go q.run()
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
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

func (q *outQueue) run() {
	for {
		select {
		case <-q.wake:
		case <-q.ctx.Done():
			return
		}
		for {
			q.mu.Lock()
			if len(q.pending) == 0 {
				q.pending = nil // let the backing array go
				q.mu.Unlock()
				break
			}
			e := q.pending[0]
			q.pending[0] = nil
			q.pending = q.pending[1:]
			q.mu.Unlock()
			if err := q.limiter.Wait(q.ctx); err != nil {
				return
			}
			q.c.Send(e)
		}
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
