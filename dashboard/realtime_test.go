package dashboard

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// fakeRealtime stands in for the Supabase Realtime server, enough to exercise the browser's
// Phoenix client: websocket (RFC 6455, text frames), vsn 1.0.0 JSON frames, phx_join on a
// private channel authorised as the user by the same RLS predicate Realtime evaluates, heartbeat,
// access_token, and broadcasts read from realtime.messages (where keapsync.signal() puts them).
type fakeRealtime struct {
	db      *pgxpool.Pool
	verify  *verifier
	apikey  string
	mu      sync.Mutex
	joins   []string // topics joined, for the test to check
	refused int
	logf    func(string, ...any)
}

func (f *fakeRealtime) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.logf("realtime connect: %s", r.URL.RawQuery)
	if r.URL.Query().Get("apikey") != f.apikey || r.URL.Query().Get("vsn") != "1.0.0" {
		http.Error(w, "apikey or vsn", http.StatusUnauthorized)
		return
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if r.Header.Get("Upgrade") != "websocket" || key == "" {
		http.Error(w, "not a websocket", http.StatusBadRequest)
		return
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")
	_ = rw.Flush()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var wmu sync.Mutex
	send := func(v any) {
		b, _ := json.Marshal(v)
		wmu.Lock()
		defer wmu.Unlock()
		_ = writeFrame(rw.Writer, b)
	}
	for {
		msg, err := readFrame(rw.Reader)
		if err != nil {
			return
		}
		f.logf("realtime frame in: %s", msg)
		var f1 struct {
			Topic, Event, Ref string
			Payload           json.RawMessage
		}
		if json.Unmarshal(msg, &f1) != nil {
			continue
		}
		reply := func(status string) {
			send(map[string]any{"topic": f1.Topic, "event": "phx_reply", "ref": f1.Ref,
				"payload": map[string]any{"status": status, "response": map[string]any{}}})
		}
		switch f1.Event {
		case "heartbeat":
			reply("ok")
		case "phx_join":
			topic, ok := f.authorize(ctx, f1.Topic, f1.Payload)
			if !ok {
				reply("error")
				continue
			}
			reply("ok")
			go f.forward(ctx, f1.Topic, topic, send)
		}
	}
}

// authorize checks the join like Realtime Authorization: a private channel, a valid user token,
// and the realtime.messages SELECT policy's predicate evaluated as that user.
func (f *fakeRealtime) authorize(ctx context.Context, channel string, payload json.RawMessage) (string, bool) {
	var p struct {
		Config      struct{ Private bool }
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(payload, &p)
	claims, err := f.verify.Verify(p.AccessToken)
	topic := channel[len("realtime:"):]
	ok := false
	if err == nil && p.Config.Private && len(channel) > len("realtime:") {
		_ = pgx.BeginFunc(ctx, f.db, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, sqlBecomeUser, string(claims.Raw), claims.Subject, "5000ms"); err != nil {
				return err
			}
			return tx.QueryRow(ctx, `select coalesce(keapsync.is_member(keapsync.topic_account($1)), false)`, topic).Scan(&ok)
		})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if ok {
		f.joins = append(f.joins, topic)
	} else {
		f.refused++
	}
	return topic, ok
}

// forward delivers new broadcasts on the topic, as Realtime does from the WAL.
func (f *fakeRealtime) forward(ctx context.Context, channel, topic string, send func(any)) {
	since := time.Now().Add(-time.Second)
	for ctx.Err() == nil {
		rows, err := f.db.Query(ctx, `select event, payload, inserted_at from realtime.messages
			where topic = $1 and extension = 'broadcast' and inserted_at > $2 order by inserted_at`, topic, since)
		if err == nil {
			for rows.Next() {
				var event string
				var payload json.RawMessage
				if rows.Scan(&event, &payload, &since) == nil {
					send(map[string]any{"topic": channel, "event": "broadcast", "ref": nil,
						"payload": map[string]any{"type": "broadcast", "event": event, "payload": payload}})
				}
			}
			rows.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func readFrame(r *bufio.Reader) ([]byte, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return nil, err
		}
		op, n := h[0]&0x0f, uint64(h[1]&0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(r, b[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(r, b[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		if n > 1<<20 {
			return nil, errors.New("frame too large")
		}
		var mask [4]byte
		if h[1]&0x80 != 0 {
			if _, err := io.ReadFull(r, mask[:]); err != nil {
				return nil, err
			}
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(r, p); err != nil {
			return nil, err
		}
		for i := range p {
			p[i] ^= mask[i%4]
		}
		if op == 8 {
			return nil, io.EOF
		}
		if op == 1 || op == 0 {
			msg = append(msg, p...)
			if h[0]&0x80 != 0 {
				return msg, nil
			}
		}
	}
}

func writeFrame(w *bufio.Writer, p []byte) error {
	h := []byte{0x81}
	switch n := len(p); {
	case n < 126:
		h = append(h, byte(n))
	case n < 1<<16:
		h = append(h, 126, byte(n>>8), byte(n))
	default:
		h = append(h, 127)
		h = binary.BigEndian.AppendUint64(h, uint64(n))
	}
	if _, err := w.Write(h); err != nil {
		return err
	}
	if _, err := w.Write(p); err != nil {
		return err
	}
	return w.Flush()
}
