package accesslog

import "encoding/json"

// scan reads the flat JSON object into p.vals without allocating. Values
// holding escapes are unescaped into p.escBuf.
func (p *Parser) scan(line []byte) error {
	p.seen = [nFields]bool{}
	p.escBuf = p.escBuf[:0]
	s := scanner{b: line}
	s.space()
	if !s.eat('{') {
		return fail("", ErrSyntax, "not a JSON object")
	}
	s.space()
	if s.eat('}') {
		return fail("", ErrSyntax, "empty object")
	}
	for {
		s.space()
		key, esc, ok := s.str()
		if !ok {
			return fail("", ErrSyntax, "bad key at byte "+itoa(s.i))
		}
		s.space()
		if !s.eat(':') {
			return fail("", ErrSyntax, "':' expected at byte "+itoa(s.i))
		}
		s.space()
		var val []byte
		quoted := s.peek() == '"'
		if quoted {
			var vesc bool
			if val, vesc, ok = s.str(); !ok {
				return fail("", ErrSyntax, "bad string at byte "+itoa(s.i))
			}
			if vesc {
				if val, ok = p.unescape(val); !ok {
					return fail("", ErrSyntax, "bad escape at byte "+itoa(s.i))
				}
			}
		} else if val, ok = s.number(); !ok {
			return fail("", ErrSyntax, "value must be a string or number at byte "+itoa(s.i))
		}
		if !esc { // no field name of the format needs escapes
			for i := range nFields {
				if string(key) == names[i] {
					if p.seen[i] {
						return fail(names[i], ErrSyntax, "duplicate field")
					}
					p.seen[i] = true
					p.vals[i] = val
					p.isStr[i] = quoted
					break
				}
			}
		}
		s.space()
		if s.eat('}') {
			break
		}
		if !s.eat(',') {
			return fail("", ErrSyntax, "',' or '}' expected at byte "+itoa(s.i))
		}
	}
	s.space()
	if s.i != len(s.b) {
		return fail("", ErrSyntax, "trailing data after the object")
	}
	return nil
}

// unescape decodes a JSON string body with escapes into p.escBuf. Only
// hostile or unusual lines take this path.
func (p *Parser) unescape(body []byte) ([]byte, bool) {
	quoted := make([]byte, 0, len(body)+2)
	quoted = append(append(append(quoted, '"'), body...), '"')
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return nil, false
	}
	start := len(p.escBuf)
	p.escBuf = append(p.escBuf, s...)
	return p.escBuf[start:len(p.escBuf):len(p.escBuf)], true
}

// scanner is a cursor over a line.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) eat(c byte) bool {
	if s.peek() == c && s.i < len(s.b) {
		s.i++
		return true
	}
	return false
}

func (s *scanner) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

// str reads a JSON string and returns its raw body and whether it holds
// escapes. Control characters are refused.
func (s *scanner) str() (body []byte, esc, ok bool) {
	if !s.eat('"') {
		return nil, false, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			body = s.b[start:s.i]
			s.i++
			return body, esc, true
		case c == '\\':
			esc = true
			s.i += 2
		case c < 0x20:
			return nil, false, false
		default:
			s.i++
		}
	}
	return nil, false, false
}

// number reads a JSON number's text (integer digits only are used by the
// format; anything else is refused later by the field's grammar).
func (s *scanner) number() ([]byte, bool) {
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			s.i++
			continue
		}
		break
	}
	return s.b[start:s.i], s.i > start
}
