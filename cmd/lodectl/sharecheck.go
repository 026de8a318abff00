package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/shares"
)

func init() {
	register("share-check", "recompute a share from a mining.notify and mining.submit (JSON on stdin)", runShareCheck)
}

// defaultShareCheckMask is the version-rolling mask assumed when the input
// has version bits but no version_mask: the BIP320 general-purpose bits,
// which pools commonly offer.
const defaultShareCheckMask = 0x1fffe000

// shareCheckInput is the JSON object share-check reads.
type shareCheckInput struct {
	Notify      []json.RawMessage `json:"notify"`
	Extranonce1 *string           `json:"extranonce1"`
	Submit      []json.RawMessage `json:"submit"`
	VersionMask *string           `json:"version_mask"`
	Difficulty  *float64          `json:"difficulty"`
}

// shareCheckOutput is what share-check prints for a share it could hash.
type shareCheckOutput struct {
	Header             string  `json:"header"`
	Hash               string  `json:"hash"`
	ShareDifficulty    float64 `json:"share_difficulty"`
	MeetsDifficulty    bool    `json:"meets_difficulty"`
	MeetsNetworkTarget bool    `json:"meets_network_target"`
}

func runShareCheck(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) != 0 {
		return shareCheckFail(stdout, errors.New("share-check takes no arguments; it reads one JSON object on stdin: "+
			`{"notify":[9 params],"extranonce1":"hex","submit":[params],"version_mask":"1fffe000","difficulty":1}`))
	}
	out, err := shareCheck(stdin)
	if err != nil {
		return shareCheckFail(stdout, err)
	}
	enc := json.NewEncoder(stdout)
	if err := enc.Encode(out); err != nil {
		fmt.Fprintf(stderr, "lodectl share-check: %v\n", err)
		return 1
	}
	return 0
}

func shareCheckFail(stdout io.Writer, err error) int {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{err.Error()})
	fmt.Fprintf(stdout, "%s\n", b)
	return 1
}

// shareCheck runs the server's own path: the notify becomes a Job
// (blocktemplate.JobFromNotify), the Job a shares.Work, and the submit goes
// through a shares.Session exactly as a miner's would.
func shareCheck(r io.Reader) (*shareCheckOutput, error) {
	raw, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read stdin: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var in shareCheckInput
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	if dec.More() {
		return nil, errors.New("input: more than one JSON value")
	}
	n, err := decodeNotify(in.Notify)
	if err != nil {
		return nil, err
	}
	if in.Extranonce1 == nil {
		return nil, errors.New("extranonce1: missing")
	}
	en1, err := hex.DecodeString(*in.Extranonce1)
	if err != nil {
		return nil, fmt.Errorf("extranonce1 %q: not hex", *in.Extranonce1)
	}
	params, err := decodeStrings("submit", in.Submit)
	if err != nil {
		return nil, err
	}
	sub, err := shares.ParseSubmit(params)
	if err != nil {
		return nil, fmt.Errorf("submit: %w", err)
	}
	mask := uint32(defaultShareCheckMask)
	if in.VersionMask != nil {
		if mask, err = blocktemplate.ParseHex32(*in.VersionMask); err != nil {
			return nil, fmt.Errorf("version_mask: %w", err)
		}
	}
	difficulty := 1.0
	if in.Difficulty != nil {
		difficulty = *in.Difficulty
	}

	// The extranonce2 size is what the miner was told at subscribe; the
	// submit carries exactly that many bytes.
	job, err := blocktemplate.JobFromNotify(n, len(en1), sub.Extranonce2Len)
	if err != nil {
		return nil, err
	}
	// A notify carries no mintime; the submitted ntime may be anything up to
	// the server's window after the notify's ntime.
	v, err := shares.New(shares.Config{})
	if err != nil {
		return nil, err
	}
	w, err := v.NewWork(job)
	if err != nil {
		return nil, err
	}
	sess, err := v.NewSession(en1, mask)
	if err != nil {
		return nil, err
	}
	if err := sess.SetDifficulty(difficulty); err != nil {
		return nil, fmt.Errorf("difficulty: %w", err)
	}
	sess.AddJob(w)
	var res shares.Result
	err = sess.Submit(&sub, &res)
	switch {
	case err == nil, errors.Is(err, shares.ErrLowDifficulty):
	case errors.Is(err, shares.ErrJobNotFound):
		return nil, fmt.Errorf("%w: submit job id %q, notify job id %q (code %d)", err, sub.JobID, n.JobID, shares.Code(err))
	default:
		return nil, fmt.Errorf("share rejected before hashing: %w (code %d)", err, shares.Code(err))
	}
	// Print the exactly rounded difficulty of the hash the validator produced.
	d := blocktemplate.HashDifficulty(&res.Hash)
	if math.IsInf(d, 0) || math.IsNaN(d) {
		return nil, errors.New("hash is zero")
	}
	return &shareCheckOutput{
		Header:             hex.EncodeToString(res.Header[:]),
		Hash:               res.Hash.String(),
		ShareDifficulty:    d,
		MeetsDifficulty:    res.MeetsTarget,
		MeetsNetworkTarget: res.Block,
	}, nil
}

// decodeNotify reads the nine mining.notify params.
func decodeNotify(params []json.RawMessage) (blocktemplate.Notify, error) {
	var n blocktemplate.Notify
	if params == nil {
		return n, errors.New("notify: missing")
	}
	if len(params) != 9 {
		return n, fmt.Errorf("notify: %d params, want 9", len(params))
	}
	strs := []*string{&n.JobID, &n.PrevHash, &n.Coinb1, &n.Coinb2, nil, &n.Version, &n.NBits, &n.NTime}
	names := []string{"job_id", "prevhash", "coinb1", "coinb2", "merkle_branch", "version", "nbits", "ntime"}
	for i, dst := range strs {
		if dst == nil {
			continue
		}
		if err := strictUnmarshal(params[i], dst); err != nil {
			return n, fmt.Errorf("notify %s (param %d): want a string", names[i], i)
		}
	}
	if err := strictUnmarshal(params[4], &n.MerkleBranch); err != nil || n.MerkleBranch == nil {
		return n, errors.New("notify merkle_branch (param 4): want an array of strings")
	}
	if err := strictUnmarshal(params[8], &n.CleanJobs); err != nil {
		return n, errors.New("notify clean_jobs (param 8): want a boolean")
	}
	return n, nil
}

func decodeStrings(what string, params []json.RawMessage) ([]string, error) {
	if params == nil {
		return nil, fmt.Errorf("%s: missing", what)
	}
	out := make([]string, len(params))
	for i, p := range params {
		if err := strictUnmarshal(p, &out[i]); err != nil {
			return nil, fmt.Errorf("%s param %d: want a string", what, i)
		}
	}
	return out, nil
}

// strictUnmarshal is json.Unmarshal that refuses null (which would leave
// the destination silently unset).
func strictUnmarshal(raw json.RawMessage, dst any) error {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return errors.New("null")
	}
	return json.Unmarshal(raw, dst)
}
