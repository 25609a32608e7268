package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// SSEEvent is one Server-Sent Event.
type SSEEvent struct {
	ID    string
	Event string
	Data  string
	// Retry is the reconnection time the server asked for, in
	// milliseconds (0 when not given).
	Retry int
}

// SSEReader reads Server-Sent Events (text/event-stream) from a stream.
type SSEReader struct {
	r *bufio.Reader
	// lastID is the last event id seen, kept across events as the
	// specification says.
	lastID string
	// retry is the last reconnection time the server asked for.
	retry time.Duration
}

// maxSSELine bounds one line of the stream.
const maxSSELine = 4 << 20

// NewSSEReader reads events from r.
func NewSSEReader(r io.Reader) *SSEReader {
	return &SSEReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// Retry is the reconnection time the server last asked for (0 when it
// did not).
func (s *SSEReader) Retry() time.Duration { return s.retry }

// LastID is the id of the last event read (or of a previous one when the
// last had none).
func (s *SSEReader) LastID() string { return s.lastID }

// Next returns the next event. Comments (": keepalive") and events without
// data are skipped. At the end of the stream it returns io.EOF; an event
// cut off by the end is dropped, as the specification says.
func (s *SSEReader) Next() (SSEEvent, error) {
	var ev SSEEvent
	var data []string
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil {
			return SSEEvent{}, err
		}
		if line == "" {
			if !hasData {
				ev = SSEEvent{}
				continue
			}
			ev.Data = strings.Join(data, "\n")
			if ev.ID == "" {
				ev.ID = s.lastID
			}
			return ev, nil
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "data":
			data, hasData = append(data, value), true
		case "event":
			ev.Event = value
		case "id":
			if !strings.ContainsRune(value, 0) {
				ev.ID, s.lastID = value, value
			}
		case "retry":
			if n, err := strconv.Atoi(value); err == nil && n >= 0 {
				ev.Retry, s.retry = n, time.Duration(n)*time.Millisecond
			}
		}
	}
}

// readLine returns one line without its ending (LF, CRLF or CR before LF).
func (s *SSEReader) readLine() (string, error) {
	var b strings.Builder
	for {
		chunk, isPrefix, err := s.r.ReadLine()
		if err != nil {
			if errors.Is(err, io.EOF) && b.Len() > 0 {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		b.Write(chunk)
		if b.Len() > maxSSELine {
			return "", fmt.Errorf("event stream line longer than %d bytes", maxSSELine)
		}
		if !isPrefix {
			return b.String(), nil
		}
	}
}
