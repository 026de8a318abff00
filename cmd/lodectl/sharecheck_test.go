package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/lode-pool/lode/internal/testvectors"
)

// shareCheckInputs returns each share vector as share-check's stdin object.
func shareCheckInputs(t *testing.T) (*testvectors.File, []map[string]any) {
	t.Helper()
	vf := testvectors.Load(t)
	var inputs []map[string]any
	for _, v := range vf.Shares {
		in := map[string]any{
			"notify":      v.Notify.Params(),
			"extranonce1": v.Extranonce1,
			"submit":      v.Submit.Params(),
		}
		if v.VersionMask != "" {
			in["version_mask"] = v.VersionMask
		}
		inputs = append(inputs, in)
	}
	return vf, inputs
}

func runShareCheckJSON(t *testing.T, in any) (map[string]any, int) {
	t.Helper()
	var stdin []byte
	switch v := in.(type) {
	case string:
		stdin = []byte(v)
	default:
		var err error
		if stdin, err = json.Marshal(in); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"share-check"}, bytes.NewReader(stdin), &stdout, &stderr)
	var out map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("stdout is not one JSON object: %q (stderr %q)", stdout.String(), stderr.String())
	}
	if strings.Count(strings.TrimSpace(stdout.String()), "\n") != 0 {
		t.Fatalf("stdout has more than one line: %q", stdout.String())
	}
	return out, code
}

func TestShareCheckVectors(t *testing.T) {
	vf, inputs := shareCheckInputs(t)
	for i, v := range vf.Shares {
		t.Run(v.Name, func(t *testing.T) {
			out, code := runShareCheckJSON(t, inputs[i])
			if code != 0 {
				t.Fatalf("exit %d: %v", code, out)
			}
			want := map[string]any{
				"header":               v.Expected.HeaderHex,
				"hash":                 v.Expected.BlockHash,
				"share_difficulty":     v.Expected.ShareDifficulty,
				"meets_difficulty":     true,
				"meets_network_target": v.Expected.MeetsNetworkTarget,
			}
			if len(out) != len(want) {
				t.Errorf("output has keys %v", out)
			}
			for k, w := range want {
				if out[k] != w {
					t.Errorf("%s = %v, want %v", k, out[k], w)
				}
			}
		})
	}
}

func TestShareCheckDifficulty(t *testing.T) {
	vf, inputs := shareCheckInputs(t)
	for i, v := range vf.Shares {
		in := inputs[i]
		in["difficulty"] = v.Expected.ShareDifficulty * 1.01
		out, code := runShareCheckJSON(t, in)
		if code != 0 || out["meets_difficulty"] != false || out["hash"] != v.Expected.BlockHash {
			t.Errorf("%s above its difficulty: exit %d, %v", v.Name, code, out)
		}
		in["difficulty"] = 1e-8
		if out, code := runShareCheckJSON(t, in); code != 0 || out["meets_difficulty"] != true {
			t.Errorf("%s at 1e-8: exit %d, %v", v.Name, code, out)
		}
	}
}

func TestShareCheckMalformed(t *testing.T) {
	_, inputs := shareCheckInputs(t)
	good, _ := json.Marshal(inputs[len(inputs)-1])
	edit := func(f func(m map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	tests := []struct {
		name, in, wantErr string
	}{
		{"empty", "", "input"},
		{"not json", "notify", "input"},
		{"array", "[]", "input"},
		{"two objects", string(good) + string(good), "more than one"},
		{"unknown field", edit(func(m map[string]any) { m["difficuly"] = 2 }), "unknown field"},
		{"no notify", edit(func(m map[string]any) { delete(m, "notify") }), "notify"},
		{"short notify", edit(func(m map[string]any) { m["notify"] = m["notify"].([]any)[:8] }), "want 9"},
		{"notify number", edit(func(m map[string]any) { m["notify"].([]any)[1] = 5 }), "prevhash"},
		{"branch not array", edit(func(m map[string]any) { m["notify"].([]any)[4] = "x" }), "merkle_branch"},
		{"bad branch hash", edit(func(m map[string]any) { m["notify"].([]any)[4] = []any{"zz"} }), "merkle branch"},
		{"clean not bool", edit(func(m map[string]any) { m["notify"].([]any)[8] = "yes" }), "clean_jobs"},
		{"bad prevhash", edit(func(m map[string]any) { m["notify"].([]any)[1] = "00" }), "prevhash"},
		{"bad nbits", edit(func(m map[string]any) { m["notify"].([]any)[6] = "1d00ff" }), "nbits"},
		{"no extranonce1", edit(func(m map[string]any) { delete(m, "extranonce1") }), "extranonce1"},
		{"bad extranonce1", edit(func(m map[string]any) { m["extranonce1"] = "xyz" }), "extranonce1"},
		{"no submit", edit(func(m map[string]any) { delete(m, "submit") }), "submit"},
		{"submit number", edit(func(m map[string]any) { m["submit"].([]any)[4] = 7 }), "submit param 4"},
		{"short submit", edit(func(m map[string]any) { m["submit"] = m["submit"].([]any)[:4] }), "malformed submit"},
		{"bad nonce", edit(func(m map[string]any) { m["submit"].([]any)[4] = "123" }), "nonce"},
		{"other job", edit(func(m map[string]any) { m["submit"].([]any)[1] = "nope" }), "job not found"},
		{"ntime far ahead", edit(func(m map[string]any) { m["submit"].([]any)[3] = "ffffffff" }), "ntime out of range"},
		{"bits outside mask", edit(func(m map[string]any) { m["submit"] = append(m["submit"].([]any), "e0000000") }), "invalid version bits"},
		{"bad mask", edit(func(m map[string]any) { m["version_mask"] = "1fffe" }), "version_mask"},
		{"zero difficulty", edit(func(m map[string]any) { m["difficulty"] = 0 }), "difficulty"},
		{"negative difficulty", edit(func(m map[string]any) { m["difficulty"] = -1 }), "difficulty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, code := runShareCheckJSON(t, tc.in)
			msg, _ := out["error"].(string)
			if code != 1 || len(out) != 1 || !strings.Contains(msg, tc.wantErr) {
				t.Fatalf("exit %d, %v; want exit 1 and an error containing %q", code, out, tc.wantErr)
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"share-check", "extra"}, strings.NewReader(string(good)), &stdout, &stderr); code != 1 ||
		!strings.Contains(stdout.String(), `"error"`) {
		t.Fatalf("extra argument: exit %d %q", code, stdout.String())
	}
}

// FuzzShareCheck feeds arbitrary stdin: share-check must print exactly one
// JSON object (a result with exit 0, or an error with exit 1), never panic.
func FuzzShareCheck(f *testing.F) {
	f.Add([]byte(`{"notify":["bf","4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000","01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008","072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000",[],"00000002","1c2ac4af","504e86b9",false],"extranonce1":"08000002","submit":["slush.miner1","bf","00000001","504e86ed","b2957c02"]}`))
	f.Add([]byte(`{"notify":null}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"notify":["a","","","",[],"","","",true],"extranonce1":"","submit":[],"difficulty":1e-300}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var stdout, stderr bytes.Buffer
		code := run([]string{"share-check"}, bytes.NewReader(in), &stdout, &stderr)
		var out map[string]any
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
			t.Fatalf("stdout %q is not JSON", stdout.String())
		}
		_, isErr := out["error"]
		if (code == 1) != isErr || (code != 0 && code != 1) {
			t.Fatalf("exit %d with %v", code, out)
		}
	})
}
