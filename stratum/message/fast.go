package message

import (
	"encoding/json"
	"strings"
)

// decodeFast parses the common shape of a client request without
// encoding/json: an object whose members are "id" (any scalar), "method" (a
// string without escapes), "params" (an array) and harmless extras such as
// "jsonrpc". ok is false for anything it does not fully understand, and the
// caller falls back to encoding/json, so the two always agree (checked by
// FuzzDecodeFastMatchesJSON). The returned ID and Params alias line.
//
// params, when not nil, is reused for Params (see DecodeReusing).
func decodeFast(line []byte, params []json.RawMessage) (req Request, ok bool) {
	p := parser{b: line}
	p.ws()
	if !p.eat('{') {
		return Request{}, false
	}
	p.ws()
	if p.eat('}') {
		return Request{}, false // no method: let the slow path say so
	}
	haveMethod := false
	for {
		p.ws()
		key, esc, good := p.str()
		if !good || esc {
			return Request{}, false
		}
		p.ws()
		if !p.eat(':') {
			return Request{}, false
		}
		p.ws()
		switch string(key) {
		case "id":
			start := p.i
			if !p.scalar() {
				return Request{}, false
			}
			req.ID = json.RawMessage(line[start:p.i])
		case "method":
			if p.peek() == 'n' && p.lit("null") {
				return Request{}, false
			}
			m, esc, good := p.str()
			if !good || esc {
				return Request{}, false
			}
			req.Method = methodName(m)
			haveMethod = true
		case "params":
			if p.peek() == 'n' && p.lit("null") {
				req.Params = nil
				break
			}
			if !p.eat('[') {
				return Request{}, false
			}
			if req.Params == nil {
				if params == nil {
					params = make([]json.RawMessage, 0, 6) // mining.submit has 5 or 6
				}
				req.Params = params
			}
			req.Params = req.Params[:0]
			p.ws()
			if !p.eat(']') {
				for {
					p.ws()
					start := p.i
					if !p.value(0) {
						return Request{}, false
					}
					req.Params = append(req.Params, json.RawMessage(line[start:p.i]))
					p.ws()
					if p.eat(']') {
						break
					}
					if !p.eat(',') {
						return Request{}, false
					}
				}
			}
		default:
			k := string(key)
			for _, known := range [...]string{"id", "method", "params", "result", "error"} {
				if strings.EqualFold(k, known) {
					return Request{}, false // encoding/json matches keys case-insensitively
				}
			}
			if !p.value(0) {
				return Request{}, false
			}
		}
		p.ws()
		if p.eat('}') {
			break
		}
		if !p.eat(',') {
			return Request{}, false
		}
	}
	p.ws()
	if p.i != len(p.b) || !haveMethod {
		return Request{}, false
	}
	return req, true
}

type parser struct {
	b []byte
	i int
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *parser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) lit(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// str scans a JSON string and returns its raw content; esc reports
// backslash escapes (content is then not the decoded value). Control
// characters and invalid UTF-8 make it fail (encoding/json would reject or
// rewrite them).
func (p *parser) str() (content []byte, esc, ok bool) {
	if !p.eat('"') {
		return nil, false, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			content = p.b[start:p.i]
			p.i++
			return content, esc, true
		case c == '\\':
			esc = true
			if p.i+1 >= len(p.b) {
				return nil, false, false
			}
			switch p.b[p.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i += 2
			case 'u':
				if p.i+6 > len(p.b) {
					return nil, false, false
				}
				for _, h := range p.b[p.i+2 : p.i+6] {
					if !isHex(h) {
						return nil, false, false
					}
				}
				p.i += 6
			default:
				return nil, false, false
			}
		case c < 0x20 || c >= 0x80:
			// Control characters are invalid; non-ASCII is left to
			// encoding/json, which validates UTF-8.
			return nil, false, false
		default:
			p.i++
		}
	}
	return nil, false, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// scalar scans a string, number, true, false or null.
func (p *parser) scalar() bool {
	switch c := p.peek(); {
	case c == '"':
		_, _, ok := p.str()
		return ok
	case c == 't':
		return p.lit("true")
	case c == 'f':
		return p.lit("false")
	case c == 'n':
		return p.lit("null")
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	}
	return false
}

// value scans any JSON value, nesting at most a few levels.
func (p *parser) value(depth int) bool {
	switch p.peek() {
	case '[':
		if depth >= 4 {
			return false
		}
		p.i++
		p.ws()
		if p.eat(']') {
			return true
		}
		for {
			p.ws()
			if !p.value(depth + 1) {
				return false
			}
			p.ws()
			if p.eat(']') {
				return true
			}
			if !p.eat(',') {
				return false
			}
		}
	case '{':
		if depth >= 4 {
			return false
		}
		p.i++
		p.ws()
		if p.eat('}') {
			return true
		}
		for {
			p.ws()
			if _, _, ok := p.str(); !ok {
				return false
			}
			p.ws()
			if !p.eat(':') {
				return false
			}
			p.ws()
			if !p.value(depth + 1) {
				return false
			}
			p.ws()
			if p.eat('}') {
				return true
			}
			if !p.eat(',') {
				return false
			}
		}
	}
	return p.scalar()
}

// number scans a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *parser) number() bool {
	p.eat('-')
	digits := func() int {
		n := 0
		for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.eat('0') {
		// no further integer digits allowed
	} else if digits() == 0 {
		return false
	}
	if p.eat('.') && digits() == 0 {
		return false
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.i++
		if c := p.peek(); c == '+' || c == '-' {
			p.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}

// knownMethods are returned without allocating a string per request.
var knownMethods = [...]string{
	MethodSubmit, MethodSubscribe, MethodAuthorize, MethodConfigure,
	MethodSuggestDifficulty, MethodSuggestTarget, MethodExtranonceSubscribe,
}

func methodName(m []byte) string {
	for _, k := range knownMethods {
		if string(m) == k {
			return k
		}
	}
	return string(m)
}
