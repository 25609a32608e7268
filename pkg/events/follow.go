package events

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
	return FollowMessages(ctx, js, o, func(msg jetstream.Msg) {
		ev, err := Decode(msg.Subject(), msg.Data())
		if err != nil {
			if o.Rejected != nil {
				o.Rejected(msg.Subject(), err)
			}
			if o.Source != "" && errors.Is(err, ErrRejected) {
				if rerr := Reject(ctx, js, o.Source, msg.Subject(), msg.Data(), err); rerr != nil {
					o.trouble(fmt.Errorf("publish rejection: %w", rerr))
				}
			}
			return
		}
		handle(ev)
	})
}

// FollowMessages is Follow without decoding: every message of o.Subjects
// on o.Stream, in stream order, one at a time (o.Rejected and o.Source
// are not used).
func FollowMessages(ctx context.Context, js jetstream.JetStream, o FollowOptions, handle func(jetstream.Msg)) (*Follower, error) {
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
	f.cc, err = cons.Consume(func(msg jetstream.Msg) {
		handle(msg)
		if md, err := msg.Metadata(); err == nil && md.NumPending == 0 {
			f.markCaughtUp()
		}
	},
		jetstream.PullHeartbeat(FollowHeartbeat),
		jetstream.PullExpiry(5*FollowHeartbeat),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			o.trouble(fmt.Errorf("follow %s: %w", o.Stream, err))
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", o.Stream, err)
	}
	return f, nil
}

func (o FollowOptions) trouble(err error) {
	if o.Trouble != nil {
		o.Trouble(err)
	}
}

// KVUpdate is one update of a KV bucket key: its value at Revision, or
// its deletion (a delete or a purge).
type KVUpdate struct {
	Key      string
	Revision uint64
	Deleted  bool
	Value    []byte
}

// WatchKV follows bucket as a KV watch does (the latest revision of every
// key, then each update) but through FollowMessages, so it has the same
// heartbeats and recovery: the library's own watcher could stay silent
// for a minute after the NATS node holding its consumer died. o.Stream,
// o.Subjects and o.Deliver are set by WatchKV.
func WatchKV(ctx context.Context, js jetstream.JetStream, bucket string, o FollowOptions, handle func(KVUpdate)) (*Follower, error) {
	prefix := "$KV." + bucket + "."
	o.Stream, o.Subjects, o.Deliver = "KV_"+bucket, []string{prefix + ">"}, jetstream.DeliverLastPerSubjectPolicy
	return FollowMessages(ctx, js, o, func(msg jetstream.Msg) {
		md, err := msg.Metadata()
		if err != nil {
			o.trouble(fmt.Errorf("watch %s: %w", bucket, err))
			return
		}
		op := msg.Headers().Get("KV-Operation")
		handle(KVUpdate{Key: strings.TrimPrefix(msg.Subject(), prefix), Revision: md.Sequence.Stream,
			Deleted: op == "DEL" || op == "PURGE", Value: msg.Data()})
	})
}
