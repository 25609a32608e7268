package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// FollowHeartbeat is how often the server of a followed stream must show
// it is alive. Two missed heartbeats make the follower recreate its
// consumer, so a follower whose consumer lived on a NATS server that died
// resumes within about twice this, where the library's default (half
// the 30 s pull expiry) would leave it silent for half a minute.
const FollowHeartbeat = 2 * time.Second

// FollowOptions say what to follow and how to report trouble.
type FollowOptions struct {
	// Stream and Subjects (filters) to follow.
	Stream   string
	Subjects []string
	// Deliver is where to start: all, last per subject, or new only.
	Deliver jetstream.DeliverPolicy
	// Source names the follower in the rejections it publishes; a
	// follower without one (a read-only view) publishes none.
	Source string
	// Rejected, when set, is told of each event refused by Decode.
	Rejected func(subject string, err error)
	// Trouble, when set, is told of consumer errors (missed heartbeats,
	// a consumer recreated after its server went away) and of rejections
	// that could not be published. The follower recovers on its own.
	Trouble func(err error)
}

// Follower is a running ordered consumer feeding decoded events to a
// handler.
type Follower struct {
	cc       jetstream.ConsumeContext
	caughtUp chan struct{}
	once     sync.Once
}

// Stop ends the follower; the handler is not called after Stop returns
// except for a message already being handled.
func (f *Follower) Stop() { f.cc.Stop() }

// CaughtUp is closed once the follower has handled every event that was
// in the stream when it started.
func (f *Follower) CaughtUp() <-chan struct{} { return f.caughtUp }

func (f *Follower) markCaughtUp() { f.once.Do(func() { close(f.caughtUp) }) }

// Follow replays and then follows o.Subjects on o.Stream with an ordered
// consumer (no durable state: a restarted follower replays again) and
// hands every event that decodes to handle, in stream order, one at a
// time. An event Decode refuses is reported to o.Rejected, answered on
// rejected.<subject> (when o.Source is set) if its content was refused,
// and never reaches handle.
//
// The consumer is recreated from the last handled position whenever the
// client reconnects or heartbeats stop (FollowHeartbeat), so losing the
// NATS server that held it loses no event and stalls the follower only
// for a few seconds.
func Follow(ctx context.Context, js jetstream.JetStream, o FollowOptions, handle func(Event)) (*Follower, error) {
	cons, err := js.OrderedConsumer(ctx, o.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: o.Subjects,
		DeliverPolicy:  o.Deliver,
	})
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", o.Stream, err)
	}
	f := &Follower{caughtUp: make(chan struct{})}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", o.Stream, err)
	}
	if info.NumPending == 0 {
		f.markCaughtUp()
	}
	trouble := func(err error) {
		if o.Trouble != nil {
			o.Trouble(fmt.Errorf("follow %s: %w", o.Stream, err))
		}
	}
	f.cc, err = cons.Consume(func(msg jetstream.Msg) {
		ev, err := Decode(msg.Subject(), msg.Data())
		if err != nil {
			if o.Rejected != nil {
				o.Rejected(msg.Subject(), err)
			}
			if o.Source != "" && errors.Is(err, ErrRejected) {
				if rerr := Reject(ctx, js, o.Source, msg.Subject(), msg.Data(), err); rerr != nil {
					trouble(fmt.Errorf("publish rejection: %w", rerr))
				}
			}
		} else {
			handle(ev)
		}
		if md, err := msg.Metadata(); err == nil && md.NumPending == 0 {
			f.markCaughtUp()
		}
	},
		jetstream.PullHeartbeat(FollowHeartbeat),
		jetstream.PullExpiry(5*FollowHeartbeat),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { trouble(err) }),
	)
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", o.Stream, err)
	}
	return f, nil
}
