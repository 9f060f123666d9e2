package admin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/consumergroup/sharestate"
)

// ShareStatePath is where ShareStateHandler is served.
const ShareStatePath = "/debug/share-state"

// ShareStateRequest is the JSON body of a POST /debug/share-state: one
// Persister operation on one share-partition.
type ShareStateRequest struct {
	// Op is initialize, read, write, summary or delete.
	Op    string `json:"op"`
	Group string `json:"group"`
	// TopicID is the topic id in Kafka's text form (unpadded URL-safe
	// base64).
	TopicID     string             `json:"topicId"`
	Partition   int32              `json:"partition"`
	StateEpoch  int32              `json:"stateEpoch"`
	LeaderEpoch int32              `json:"leaderEpoch"`
	StartOffset int64              `json:"startOffset"`
	Batches     []sharestate.Batch `json:"batches"`
	// TimeoutMillis bounds the operation with its retries; 0 means 10 s.
	TimeoutMillis int64 `json:"timeoutMs"`
}

// ShareStateResponse is the JSON answer: the state (read, summary) or
// the error, with its Kafka error name when it has one.
type ShareStateResponse struct {
	State *sharestate.State `json:"state,omitempty"`
	Error string            `json:"error,omitempty"`
	Code  string            `json:"code,omitempty"`
}

// ShareStateHandler serves POST /debug/share-state: it runs one operation
// through p, this node's share-state persister, wherever the key's
// coordinator is. Testing only (debug.share.state): it lets end-to-end
// tests drive the persister of a chosen node. 200 with the state on
// success, 409 with the error otherwise, 400 for a malformed request.
func ShareStateHandler(p sharestate.Persister) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, "use POST", http.StatusMethodNotAllowed)
			return
		}
		var req ShareStateRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
			http.Error(w, "decode the request: "+err.Error(), http.StatusBadRequest)
			return
		}
		var key sharestate.Key
		id, err := base64.RawURLEncoding.DecodeString(req.TopicID)
		if err != nil || len(id) != 16 {
			http.Error(w, fmt.Sprintf("topicId %q is not a topic id (22 characters of unpadded URL-safe base64)", req.TopicID), http.StatusBadRequest)
			return
		}
		key.Group, key.Partition = req.Group, req.Partition
		copy(key.TopicID[:], id)
		timeout := 10 * time.Second
		if req.TimeoutMillis > 0 {
			timeout = time.Duration(req.TimeoutMillis) * time.Millisecond
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		var state *sharestate.State
		switch req.Op {
		case "initialize":
			err = p.Initialize(ctx, key, req.StateEpoch, req.StartOffset)
		case "read":
			var s sharestate.State
			s, err = p.Read(ctx, key, req.LeaderEpoch)
			state = &s
		case "write":
			err = p.Write(ctx, key, sharestate.Write{StateEpoch: req.StateEpoch, LeaderEpoch: req.LeaderEpoch, StartOffset: req.StartOffset, Batches: req.Batches})
		case "summary":
			var s sharestate.Summary
			s, err = p.ReadSummary(ctx, key)
			state = &sharestate.State{StateEpoch: s.StateEpoch, LeaderEpoch: s.LeaderEpoch, StartOffset: s.StartOffset}
		case "delete":
			err = p.Delete(ctx, key)
		default:
			http.Error(w, fmt.Sprintf("op %q is not one of initialize, read, write, summary, delete", req.Op), http.StatusBadRequest)
			return
		}
		var resp ShareStateResponse
		status := http.StatusOK
		if err != nil {
			status = http.StatusConflict
			resp.Error = err.Error()
			var ke *kerr.Error
			if errors.As(err, &ke) {
				resp.Code = ke.Message
			}
		} else {
			resp.State = state
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(resp)
	})
}
