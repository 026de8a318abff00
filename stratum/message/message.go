package message

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// Client → server methods.
const (
	MethodSubscribe           = "mining.subscribe"
	MethodAuthorize           = "mining.authorize"
	MethodConfigure           = "mining.configure"
	MethodSubmit              = "mining.submit"
	MethodSuggestDifficulty   = "mining.suggest_difficulty"
	MethodSuggestTarget       = "mining.suggest_target"
	MethodExtranonceSubscribe = "mining.extranonce.subscribe"
	MethodMultiVersion        = "mining.multi_version"
)

// Server → client methods.
const (
	MethodNotify         = "mining.notify"
	MethodSetDifficulty  = "mining.set_difficulty"
	MethodSetVersionMask = "mining.set_version_mask"
	MethodSetExtranonce  = "mining.set_extranonce"
	MethodReconnect      = "client.reconnect"
	MethodShowMessage    = "client.show_message"
)

// Stratum V1 error codes (Slush's manual; used by every major pool).
const (
	CodeOther         = 20
	CodeJobNotFound   = 21
	CodeDuplicate     = 22
	CodeLowDifficulty = 23
	CodeUnauthorized  = 24
	CodeNotSubscribed = 25
)

// ErrMalformed is wrapped by Decode for input that is not a Stratum request.
var ErrMalformed = errors.New("malformed stratum message")

// ErrResponse is returned by Decode for a response (an object with a result
// or error member and no method): a client answering a server request such
// as client.get_version. It is not a protocol violation.
var ErrResponse = errors.New("stratum response, not a request")

// Request is a decoded client message. ID is the raw JSON of the id member
// (any JSON type) so it can be echoed back byte for byte; it is nil when the
// member is absent. Params holds each positional parameter as raw JSON.
type Request struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params []json.RawMessage
}

// rawRequest accepts params as any JSON value: some clients send an object
// or null; only an array yields positional params.
type rawRequest struct {
	ID     json.RawMessage `json:"id"`
	Method *string         `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// Decode parses one line (without its newline). A line that is valid JSON
// but not a request (no string method) is ErrMalformed; the partially decoded
// ID is still returned so the caller can answer it with an error. The
// returned ID and Params may alias line: use them before line is reused.
func Decode(line []byte) (Request, error) { return DecodeReusing(line, nil) }

// DecodeReusing is Decode that puts the params in params' backing array
// when it is large enough: a caller that decodes line after line (a
// connection handler) passes the previous request's Params and allocates
// nothing per request. The returned Params may alias params.
func DecodeReusing(line []byte, params []json.RawMessage) (Request, error) {
	if req, ok := decodeFast(line, params); ok {
		return req, nil
	}
	var raw rawRequest
	if err := json.Unmarshal(line, &raw); err != nil {
		return Request{}, fmt.Errorf("decode request: %w: %v", ErrMalformed, err)
	}
	req := Request{ID: raw.ID}
	if raw.Method == nil {
		if raw.Result != nil || raw.Error != nil {
			return req, ErrResponse
		}
		return req, fmt.Errorf("decode request: %w: no method", ErrMalformed)
	}
	req.Method = *raw.Method
	p := bytes.TrimSpace(raw.Params)
	if len(p) > 0 && p[0] == '[' {
		if err := json.Unmarshal(p, &req.Params); err != nil {
			return req, fmt.Errorf("decode params: %w: %v", ErrMalformed, err)
		}
	}
	return req, nil
}

// IsNotification reports whether the request expects no reply (id absent
// or null).
func (r *Request) IsNotification() bool {
	return len(r.ID) == 0 || string(r.ID) == "null"
}

// String returns param i as a string; ok is false when it is absent or not a
// JSON string.
func (r *Request) String(i int) (string, bool) {
	if i >= len(r.Params) {
		return "", false
	}
	p := r.Params[i]
	if len(p) < 2 || p[0] != '"' {
		return "", false
	}
	// Fast path: no escapes.
	if bytes.IndexByte(p[1:len(p)-1], '\\') < 0 && p[len(p)-1] == '"' {
		return string(p[1 : len(p)-1]), true
	}
	var s string
	if err := json.Unmarshal(p, &s); err != nil {
		return "", false
	}
	return s, true
}

// Number returns param i as a float64. Firmware sends difficulties as a
// number, a numeric string, or a one-element array; all are accepted.
func (r *Request) Number(i int) (float64, bool) {
	if i >= len(r.Params) {
		return 0, false
	}
	return ParseNumber(r.Params[i])
}

// ParseNumber reads a JSON number, a numeric string or a one-element array
// holding either. Only finite values are numbers: "NaN", "Inf",
// "Infinity" and values beyond float64's range (which strconv turns into
// ±Inf) are refused, so no caller can be handed a NaN or an infinity.
func ParseNumber(p json.RawMessage) (float64, bool) {
	p = bytes.TrimSpace(p)
	if len(p) == 0 {
		return 0, false
	}
	var text string
	switch p[0] {
	case '[':
		var arr []json.RawMessage
		if err := json.Unmarshal(p, &arr); err != nil || len(arr) != 1 {
			return 0, false
		}
		if b := bytes.TrimSpace(arr[0]); len(b) > 0 && b[0] == '[' {
			return 0, false // no nesting
		}
		return ParseNumber(arr[0])
	case '"':
		if err := json.Unmarshal(p, &text); err != nil {
			return 0, false
		}
	default:
		text = string(p)
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// AppendResult appends a success response line: {"id":…,"result":…,"error":null}\n.
// result must already be JSON.
func AppendResult(dst []byte, id json.RawMessage, result []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendID(dst, id)
	dst = append(dst, `,"result":`...)
	dst = append(dst, result...)
	return append(dst, ",\"error\":null}\n"...)
}

// AppendTrue appends {"id":…,"result":true,"error":null}\n, the common reply.
func AppendTrue(dst []byte, id json.RawMessage) []byte {
	return AppendResult(dst, id, []byte("true"))
}

// AppendError appends an error response line in the array form
// [code, "message", null] with a null result.
func AppendError(dst []byte, id json.RawMessage, code int, msg string) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendID(dst, id)
	dst = append(dst, `,"result":null,"error":[`...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, ',')
	dst = AppendString(dst, msg)
	return append(dst, ",null]}\n"...)
}

// AppendNotification appends a server notification with a null id. params
// must already be a JSON array.
func AppendNotification(dst []byte, method string, params []byte) []byte {
	dst = append(dst, `{"id":null,"method":`...)
	dst = AppendString(dst, method)
	dst = append(dst, `,"params":`...)
	dst = append(dst, params...)
	return append(dst, "}\n"...)
}

func appendID(dst []byte, id json.RawMessage) []byte {
	if len(id) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, id...)
}

// AppendDifficulty appends d as a plain JSON number (no exponent) so that
// fractional difficulties down to 1e-8 reach every client parser intact.
func AppendDifficulty(dst []byte, d float64) []byte {
	return strconv.AppendFloat(dst, d, 'f', -1, 64)
}

// AppendSetDifficulty appends a mining.set_difficulty notification line.
func AppendSetDifficulty(dst []byte, d float64) []byte {
	dst = append(dst, `{"id":null,"method":"mining.set_difficulty","params":[`...)
	dst = AppendDifficulty(dst, d)
	return append(dst, "]}\n"...)
}

// AppendSetVersionMask appends mining.set_version_mask with an 8-hex mask.
func AppendSetVersionMask(dst []byte, mask uint32) []byte {
	dst = append(dst, `{"id":null,"method":"mining.set_version_mask","params":["`...)
	dst = AppendHex32(dst, mask)
	return append(dst, "\"]}\n"...)
}

// AppendSetExtranonce appends mining.set_extranonce [extranonce1_hex, size].
func AppendSetExtranonce(dst []byte, extranonce1 string, extranonce2Size int) []byte {
	dst = append(dst, `{"id":null,"method":"mining.set_extranonce","params":[`...)
	dst = AppendString(dst, extranonce1)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, int64(extranonce2Size), 10)
	return append(dst, "]}\n"...)
}

// AppendReconnect appends client.reconnect. With an empty host the client
// reconnects to the same address (after waitSeconds).
func AppendReconnect(dst []byte, host string, port int, waitSeconds int) []byte {
	dst = append(dst, `{"id":null,"method":"client.reconnect","params":[`...)
	if host != "" {
		dst = AppendString(dst, host)
		dst = append(dst, ',')
		dst = strconv.AppendInt(dst, int64(port), 10)
		dst = append(dst, ',')
		dst = strconv.AppendInt(dst, int64(waitSeconds), 10)
	}
	return append(dst, "]}\n"...)
}

// Notify is the content of one mining.notify, every field already in its
// Stratum text form.
type Notify struct {
	JobID        string
	PrevHash     string // stratum order: 4-byte words of the internal hash, each byte-reversed
	Coinb1       string
	Coinb2       string
	MerkleBranch []string
	Version      string
	NBits        string
	NTime        string
	CleanJobs    bool
}

// AppendNotify appends the mining.notify line for n.
func AppendNotify(dst []byte, n *Notify) []byte {
	dst = append(dst, `{"id":null,"method":"mining.notify","params":[`...)
	dst = AppendString(dst, n.JobID)
	for _, s := range [...]string{n.PrevHash, n.Coinb1, n.Coinb2} {
		dst = append(dst, ',')
		dst = AppendString(dst, s)
	}
	dst = append(dst, ",["...)
	for i, h := range n.MerkleBranch {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, h)
	}
	dst = append(dst, ']')
	for _, s := range [...]string{n.Version, n.NBits, n.NTime} {
		dst = append(dst, ',')
		dst = AppendString(dst, s)
	}
	if n.CleanJobs {
		dst = append(dst, ",true]}\n"...)
	} else {
		dst = append(dst, ",false]}\n"...)
	}
	return dst
}

// AppendHex32 appends v as 8 lower-case hex digits (big-endian text), the
// Stratum form of version, nbits, ntime and nonce.
func AppendHex32(dst []byte, v uint32) []byte {
	const digits = "0123456789abcdef"
	for shift := 28; shift >= 0; shift -= 4 {
		dst = append(dst, digits[(v>>uint(shift))&0xf])
	}
	return dst
}

// AppendString appends s as a JSON string.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, `\u00`...)
				dst = append(dst, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
