package stratum

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lode-pool/lode/bench/miner"
	"github.com/lode-pool/lode/blocktemplate"
)

// FuzzSessionSequence drives whole sessions: each input byte is one step of
// a miner's conversation (handshake, hostile authorize and configure values,
// valid, duplicate and stale shares, malformed lines) or of the pool's (a new
// job, clean or not), written without waiting for replies, the way pipelining
// firmware does. Whatever the sequence, the session must:
//   - answer every request that has an id exactly once, in request order
//     (an answer to a later request never overtakes a share still waiting
//     for durability), up to the point where the server closes it;
//   - send only valid JSON lines, and only finite positive difficulties;
//   - have recorded exactly the shares it answered true;
//   - never panic.
func FuzzSessionSequence(f *testing.F) {
	f.Add([]byte{0, 1, 5, 5, 6, 7, 9, 5, 10, 5, 8, 11})
	f.Add([]byte{1, 0, 3, 4, 5, 2, 5, 12, 13, 5})
	f.Add([]byte{0, 2, 1, 4, 4, 3, 5, 9, 9, 6, 5, 5, 5, 5})
	f.Add([]byte{5, 8, 7, 11, 11, 0, 1, 5, 6, 6, 6})
	h := startServer(f, func(c *Config) {
		c.Logger = nil
		c.MaxLineLength = 4096
		c.Ban.Disabled = true
		c.Ports[0].MinDifficulty = 1e-9 // about one hash in four is a share
		c.Ports[0].StartDifficulty = 1e-9
	})
	jobs := &seqJobs{byID: map[string]*blocktemplate.Job{}}
	jobs.add(h.jobs.Current())
	f.Fuzz(func(t *testing.T, program []byte) {
		if len(program) > 64 {
			program = program[:64]
		}
		h.jobs.mu.Lock()
		h.jobs.t = t // testing.F's methods must not be called from the fuzz function
		h.jobs.mu.Unlock()
		runSequence(t, h, jobs, program)
	})
}

// seqJobs remembers every job the fuzz target published, by id, so the
// client can mine on the job a notify names.
type seqJobs struct {
	mu   sync.Mutex
	byID map[string]*blocktemplate.Job
}

func (j *seqJobs) add(job *blocktemplate.Job) {
	j.mu.Lock()
	j.byID[job.ID] = job
	j.mu.Unlock()
}

func (j *seqJobs) get(id string) *blocktemplate.Job {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.byID[id]
}

// seqConn is the client side of one fuzzed session: a reader goroutine
// collects everything the server sends.
type seqConn struct {
	t    *testing.T
	conn net.Conn

	mu       sync.Mutex
	cond     *sync.Cond
	lines    []msg
	en1      []byte
	en2Size  int
	lastJob  string
	diffs    []json.RawMessage
	eof      bool
	readErr  error
	badLines []string
}

func (c *seqConn) readLoop() {
	r := bufio.NewReader(c.conn)
	for {
		line, err := r.ReadBytes('\n')
		c.mu.Lock()
		if err != nil {
			c.eof, c.readErr = true, err
			c.cond.Broadcast()
			c.mu.Unlock()
			return
		}
		var m msg
		if json.Unmarshal(line, &m) != nil {
			c.badLines = append(c.badLines, string(line))
		} else {
			c.lines = append(c.lines, m)
			switch m.Method {
			case "mining.notify":
				var p []json.RawMessage
				if json.Unmarshal(m.Params, &p) == nil && len(p) > 0 {
					_ = json.Unmarshal(p[0], &c.lastJob)
				}
			case "mining.set_difficulty":
				c.diffs = append(c.diffs, m.Params)
			case "":
				c.noteSubscribe(m)
			}
		}
		c.cond.Broadcast()
		c.mu.Unlock()
	}
}

// noteSubscribe takes extranonce1 and its size from a subscribe result.
func (c *seqConn) noteSubscribe(m msg) {
	var res []json.RawMessage
	if json.Unmarshal(m.Result, &res) != nil || len(res) != 3 {
		return
	}
	var en1 string
	if json.Unmarshal(res[1], &en1) != nil {
		return
	}
	b, err := hex.DecodeString(en1)
	if err != nil {
		return
	}
	c.en1 = b
	_ = json.Unmarshal(res[2], &c.en2Size)
}

// workable returns the session's extranonce1 and newest job. When the
// client has sent subscribe and authorize it waits (bounded) for them to
// arrive; ok is false if they do not (closed, refused).
func (c *seqConn) workable(expect bool) (en1 []byte, en2Size int, jobID string, ok bool) {
	deadline := time.Now()
	if expect {
		deadline = deadline.Add(2 * time.Second)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for (c.en1 == nil || c.lastJob == "") && !c.eof && time.Now().Before(deadline) {
		c.mu.Unlock()
		time.Sleep(time.Millisecond)
		c.mu.Lock()
	}
	if c.en1 == nil || c.lastJob == "" {
		return nil, 0, "", false
	}
	return c.en1, c.en2Size, c.lastJob, true
}

// mineShare finds a share at difficulty 1e-9 (the port's minimum) on job.
func mineShare(job *blocktemplate.Job, en1 []byte, en2Size int, en2 uint64) (string, string, bool) {
	mj := &miner.Job{Coinb1: job.Coinb1, Coinb2: job.Coinb2, Version: job.Version, NBits: job.Bits, NTime: job.NTime}
	copy(mj.PrevHash[:], job.PrevHash[:])
	for _, b := range job.MerkleBranch {
		mj.MerkleBranch = append(mj.MerkleBranch, b)
	}
	e2 := make([]byte, en2Size)
	var tmp [8]byte
	binary.BigEndian.PutUint64(tmp[:], en2)
	copy(e2, tmp[max(0, 8-en2Size):])
	target := miner.DifficultyTarget(1e-9)
	for nonce := uint32(0); nonce < 256; nonce++ {
		hdr := miner.Header(mj, en1, e2, job.Version, job.NTime, nonce)
		hash := sha256d(hdr[:])
		var be [32]byte
		for i := range 32 {
			be[i] = hash[31-i]
		}
		if new(big.Int).SetBytes(be[:]).Cmp(target) <= 0 {
			return hex.EncodeToString(e2), fmt.Sprintf("%08x", nonce), true
		}
	}
	return "", "", false
}

func runSequence(t *testing.T, h *harness, jobs *seqJobs, program []byte) {
	conn, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &seqConn{t: t, conn: conn}
	c.cond = sync.NewCond(&c.mu)
	go c.readLoop()

	user := testAddress(t, 30) + ".fuzz"
	hostileUsers := []string{
		strings.ToUpper(testAddress(t, 31)), testAddress(t, 32) + ".", testAddress(t, 33) + ".a|b",
		testAddress(t, 34) + ".\x1b[31mred", testAddress(t, 35) + "." + strings.Repeat("w", 300), "", "not-an-address",
	}
	hostileNumbers := []string{`"NaN"`, `"Infinity"`, `-1`, `0`, `1e308`, `1e-300`, `"1e999"`, `[1e-9]`, `null`, `{}`}

	var ids []string // ids of requests sent, in order
	submits := map[string]bool{}
	malformed := false
	nextID := 100
	send := func(method, params string, withID bool) {
		idField := "null"
		if withID {
			nextID++
			idField = strconv.Itoa(nextID)
			ids = append(ids, idField)
			if method == "mining.submit" {
				submits[idField] = true
			}
		}
		line := `{"id":` + idField + `,"method":"` + method + `","params":` + params + "}\n"
		_, _ = conn.Write([]byte(line))
	}
	var lastShare []string
	subscribed, authorized := false, false
	recordedBefore := len(h.rec.Shares())
	for i, op := range program {
		arg := int(op >> 4)
		switch op % 14 {
		case 0:
			send("mining.subscribe", `["fuzz/1"]`, true)
			subscribed = true
		case 1:
			send("mining.authorize", `["`+user+`","x,d=1e-9"]`, true)
			authorized = true
		case 2:
			u, _ := json.Marshal(hostileUsers[arg%len(hostileUsers)])
			send("mining.authorize", `[`+string(u)+`,"x"]`, true)
		case 3:
			v := hostileNumbers[arg%len(hostileNumbers)]
			send("mining.configure", `[["version-rolling","minimum-difficulty"],{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":`+v+`,"minimum-difficulty.value":`+v+`}]`, true)
		case 4:
			send("mining.suggest_difficulty", `[`+hostileNumbers[arg%len(hostileNumbers)]+`]`, true)
		case 5:
			en1, en2Size, jobID, ok := c.workable(subscribed && authorized)
			job := jobs.get(jobID)
			if !ok || job == nil {
				send("mining.submit", `["`+user+`","nojob","00000000","00000000","00000000"]`, true)
				continue
			}
			en2, nonce, found := mineShare(job, en1, en2Size, uint64(i))
			if !found {
				continue
			}
			lastShare = []string{user, jobID, en2, fmt.Sprintf("%08x", job.NTime), nonce}
			p, _ := json.Marshal(lastShare)
			send("mining.submit", string(p), true)
		case 6:
			if lastShare != nil {
				p, _ := json.Marshal(lastShare)
				send("mining.submit", string(p), true)
			}
		case 7:
			send("mining.submit", `["`+user+`","ffffffff","00000000","00000000","00000000"]`, true)
		case 8:
			send("mining.submit", `["`+user+`",1,2]`, true)
		case 9, 10:
			job := h.jobs.next(op%14 == 9)
			jobs.add(job)
			h.srv.Publish(job)
		case 11:
			_, _ = conn.Write([]byte("{\"id\":1,\"method\":\n"))
			// A malformed line is answered (id null) but has no id to
			// track; enough of them end the session (protocol violation).
			malformed = true
		case 12:
			send("mining.suggest_difficulty", `[1e-9]`, false)
		case 13:
			send("mining.extranonce.subscribe", `[]`, true)
		}
	}
	_ = conn.(*net.TCPConn).CloseWrite()

	// The server answers everything and then sees EOF; wait for it to close.
	deadline := time.Now().Add(10 * time.Second)
	c.mu.Lock()
	for !c.eof && time.Now().Before(deadline) {
		c.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
		c.mu.Lock()
	}
	eof, lines, bad, diffs := c.eof, c.lines, c.badLines, c.diffs
	c.mu.Unlock()
	if !eof {
		t.Fatalf("server did not end the connection after the client finished")
	}
	if len(bad) > 0 {
		t.Fatalf("server sent invalid JSON: %q", bad)
	}
	for _, d := range diffs {
		var p []float64
		if err := json.Unmarshal(d, &p); err != nil || len(p) != 1 || !(p[0] > 0) || math.IsInf(p[0], 0) {
			t.Fatalf("set_difficulty %s: want one finite positive number", d)
		}
	}
	// Replies in request order: the ids answered must be a prefix-ordered
	// subsequence of those sent, each once; replies with id null answer
	// malformed lines and notifications are ignored.
	var got []string
	accepted := 0
	for _, m := range lines {
		if m.Method != "" || string(m.ID) == "null" {
			continue
		}
		got = append(got, string(m.ID))
		if submits[string(m.ID)] && string(m.Result) == "true" {
			accepted++
		}
	}
	if len(got) > len(ids) {
		t.Fatalf("%d replies for %d requests: %v vs %v", len(got), len(ids), got, ids)
	}
	for i := range got {
		if got[i] != ids[i] {
			t.Fatalf("reply %d answers id %s, want %s (sent %v, answered %v)", i, got[i], ids[i], ids, got)
		}
	}
	// Only protocol violations (malformed lines) may end a session before
	// every request is answered: a client that half-closes is answered in
	// full first.
	if len(got) < len(ids) && !malformed {
		t.Fatalf("only %d of %d requests answered (sent %v, answered %v)", len(got), len(ids), ids, got)
	}
	t.Logf("requests %d, answered %d, accepted %d", len(ids), len(got), accepted)
	if recorded := len(h.rec.Shares()) - recordedBefore; recorded != accepted {
		t.Fatalf("%d shares answered true, %d recorded", accepted, recorded)
	}
	if n := h.srv.Stats().Panics.Load(); n != 0 {
		t.Fatalf("%d session panics", n)
	}
}
