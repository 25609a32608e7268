package events

import (
	"context"
	"encoding/json"
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
	// StartTime, when set, starts at the first event published at or
	// after it instead (Deliver is then not used).
	StartTime *time.Time
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

// followStall is how often a follower checks that it is moving: with
// events pending on the server and none handed on for two checks in a row,
// it recreates its consumer from the last event handled. The library
// recreates the consumer itself after a reconnection or missed
// heartbeats, but compose-test saw that recreation stay stuck for over a
// minute after a NATS node died.
const followStall = 5 * time.Second

// Follower is a running ordered consumer feeding messages to a handler.
type Follower struct {
	js       jetstream.JetStream
	o        FollowOptions
	handle   func(jetstream.Msg)
	caughtUp chan struct{}
	once     sync.Once
	stop     chan struct{}
	stopOnce sync.Once

	mu   sync.Mutex // serializes handle; guards what follows
	gen  int        // consumer generation: messages of older ones are dropped
	last uint64     // stream sequence of the last message handed on
	cc   jetstream.ConsumeContext
}

// Stop ends the follower; the handler is not called after Stop returns.
func (f *Follower) Stop() {
	f.stopOnce.Do(func() { close(f.stop) })
	f.mu.Lock()
	f.gen++
	cc := f.cc
	f.mu.Unlock()
	if cc != nil {
		cc.Stop()
	}
}

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
// on o.Stream, in stream order, one at a time and each once (o.Rejected
// and o.Source are not used).
func FollowMessages(ctx context.Context, js jetstream.JetStream, o FollowOptions, handle func(jetstream.Msg)) (*Follower, error) {
	f := &Follower{js: js, o: o, handle: handle, caughtUp: make(chan struct{}), stop: make(chan struct{})}
	if err := f.start(ctx, true); err != nil {
		return nil, err
	}
	go f.watch(ctx)
	return f, nil
}

// start creates a consumer from the last message handed on (from o.Deliver
// before any) and consumes it as a new generation.
func (f *Follower) start(ctx context.Context, first bool) error {
	f.mu.Lock()
	// The library retries recreating its consumer a few times only: past
	// that, watch starts a new one.
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: f.o.Subjects, DeliverPolicy: f.o.Deliver, MaxResetAttempts: 3}
	if f.o.StartTime != nil {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, f.o.StartTime
	}
	if f.last > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, f.last+1
	}
	f.gen++
	gen := f.gen
	f.mu.Unlock()
	cons, err := f.js.OrderedConsumer(ctx, f.o.Stream, cfg)
	if err != nil {
		return fmt.Errorf("follow %s: %w", f.o.Stream, err)
	}
	if first {
		info, err := cons.Info(ctx)
		if err != nil {
			return fmt.Errorf("follow %s: %w", f.o.Stream, err)
		}
		if info.NumPending == 0 {
			f.markCaughtUp()
		}
		if f.o.Deliver == jetstream.DeliverNewPolicy || f.o.StartTime != nil {
			// What came before is not wanted: count it as handed on.
			f.mu.Lock()
			f.last = max(f.last, info.Delivered.Stream)
			f.mu.Unlock()
		}
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		md, err := msg.Metadata()
		f.mu.Lock()
		defer f.mu.Unlock()
		if gen != f.gen || (err == nil && md.Sequence.Stream <= f.last) {
			return // an older consumer's, or one handed on already
		}
		f.handle(msg)
		if err == nil {
			f.last = md.Sequence.Stream
			if md.NumPending == 0 {
				f.markCaughtUp()
			}
		}
	},
		jetstream.PullHeartbeat(FollowHeartbeat),
		jetstream.PullExpiry(5*FollowHeartbeat),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			f.o.trouble(fmt.Errorf("follow %s: %w", f.o.Stream, err))
		}),
	)
	if err != nil {
		return fmt.Errorf("follow %s: %w", f.o.Stream, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if gen != f.gen { // stopped meanwhile
		cc.Stop()
		return nil
	}
	f.cc = cc
	return nil
}

// watch recreates the consumer when the stream's leader holds a newer
// event on the follower's subjects than the last one handed on and none
// has been handed on for two checks in a row, until Stop or ctx ends. It
// asks the leader itself rather than the consumer: the consumer's count
// comes from the server that holds it, which may be a replica that lags,
// and the library's consumer holds its lock (Info, Stop) for as long as
// it is recreating itself.
func (f *Follower) watch(ctx context.Context) {
	t := time.NewTicker(followStall)
	defer t.Stop()
	var seen uint64
	stalls := 0
	for {
		select {
		case <-f.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f.mu.Lock()
		last := f.last
		f.mu.Unlock()
		ictx, cancel := context.WithTimeout(ctx, followStall)
		newest, err := f.newest(ictx)
		cancel()
		if err != nil || newest <= last || last != seen {
			seen, stalls = last, 0
			continue
		}
		if stalls++; stalls < 2 {
			continue
		}
		f.o.trouble(fmt.Errorf("follow %s: the leader holds sequence %d but none past %d handed on for %s; recreating the consumer",
			f.o.Stream, newest, last, 2*followStall))
		f.mu.Lock()
		old := f.cc
		f.mu.Unlock()
		if old != nil {
			go old.Stop() // may wait on the library's own recreation; its messages are dropped by generation
		}
		sctx, cancel := context.WithTimeout(ctx, followStall)
		if err := f.start(sctx, false); err != nil {
			f.o.trouble(err) // tried again at the next check
		} else {
			stalls = 0
		}
		cancel()
	}
}

// newest is the stream sequence of the newest message on the follower's
// subjects, as the stream's leader answers (a direct get could be answered
// by a replica that lags); 0 when there is none.
func (f *Follower) newest(ctx context.Context) (uint64, error) {
	var newest uint64
	for _, subj := range f.o.Subjects {
		req, err := json.Marshal(struct {
			LastBySubject string `json:"last_by_subj"`
		}{subj})
		if err != nil {
			return 0, err
		}
		msg, err := f.js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+f.o.Stream, req)
		if err != nil {
			return 0, fmt.Errorf("newest on %s: %w", f.o.Stream, err)
		}
		var resp struct {
			Message *struct {
				Seq uint64 `json:"seq"`
			} `json:"message"`
			Error *struct {
				Code int `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(msg.Data, &resp); err != nil {
			return 0, fmt.Errorf("newest on %s: %w", f.o.Stream, err)
		}
		switch {
		case resp.Message != nil:
			newest = max(newest, resp.Message.Seq)
		case resp.Error != nil && resp.Error.Code == 404: // none on that subject
		default:
			return 0, fmt.Errorf("newest on %s: unexpected answer %s", f.o.Stream, msg.Data)
		}
	}
	return newest, nil
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
