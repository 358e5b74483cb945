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
// network (girc's own flood control would block the caller).
type outQueue struct {
	c       *girc.Client
	lines   chan *girc.Event
	limiter *rate.Limiter
	ctx     context.Context
	cancel  context.CancelFunc
	once    sync.Once
}

func newOutQueue(c *girc.Client, perSecond float64, burst int) *outQueue {
	ctx, cancel := context.WithCancel(context.Background())
	q := &outQueue{
		c:       c,
		lines:   make(chan *girc.Event, outQueueSize),
		limiter: rate.NewLimiter(rate.Limit(perSecond), burst),
		ctx:     ctx,
		cancel:  cancel,
	}
	go q.run()
	return q
}

// push queues a line, or fails at once when too many wait.
func (q *outQueue) push(e *girc.Event) error {
	select {
	case q.lines <- e:
		return nil
	default:
		return transports.Errorf(transports.RateLimited, "too many lines waiting for the IRC server; slow down")
	}
}

func (q *outQueue) run() {
	for {
		select {
		case e := <-q.lines:
			if err := q.limiter.Wait(q.ctx); err != nil {
				return
			}
			q.c.Send(e)
		case <-q.ctx.Done():
			return
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
