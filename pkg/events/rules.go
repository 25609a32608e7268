package events

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// rulePathRE is a prefix or exact rule path: '/' and URL path characters
// without '%' (paths are matched decoded), quotes, '$', ';' or '&'.
var rulePathRE = regexp.MustCompile(`^/[A-Za-z0-9._~!*()+,=:@/-]{0,999}$`)

// regexQuantifierRE is a bounded quantifier at the start of a string.
var regexQuantifierRE = regexp.MustCompile(`^\{[0-9]{1,3}(,[0-9]{0,3})?\}`)

// regexEscapes are the characters a backslash may precede in a rule regex.
const regexEscapes = `./-dDwWsS+*?()[]|^`

// regexLiterals are the characters a rule regex may hold outside escapes,
// quantifier braces and a final '$'.
const regexLiterals = `/._~!,=:@-+*?|^()[]%&`

// CheckRulePath checks a prefix or exact path of a routing rule.
func CheckRulePath(s string) error {
	if !rulePathRE.MatchString(s) {
		return fmt.Errorf("must start with '/' and hold at most 1000 letters, digits or . _ ~ ! * ( ) + , = : @ / -")
	}
	return nil
}

// posixClassRE is a POSIX named class inside a bracket expression.
var posixClassRE = regexp.MustCompile(`^\[:(alpha|digit|alnum|upper|lower|space|punct|xdigit|word|blank|cntrl|graph|print):\]`)

// CheckRegex checks a routing regex. It must compile as Go RE2 and keep to
// a subset that NGINX's PCRE reads the same way and that cannot reach NGINX
// syntax: letters, digits, / . _ ~ ! , = : @ - + * ? | ^ ( ) [ ] % &, the
// escapes \. \/ \- \d \D \w \W \s \S \+ \* \? \( \) \[ \] \| \^,
// {n}, {n,} and {n,m} quantifiers, and '$' only as the final anchor. No
// quotes, whitespace, ';', '#', other braces or backslashes, no "(?"
// groups other than "(?:", no empty "[]" or "[^]", no '[' inside a class
// except a POSIX class such as [:alpha:], no range ending in a class
// escape, and no quantifier right after an anchor '^': PCRE rejects what
// RE2 reads otherwise there.
func CheckRegex(s string) error {
	if s == "" || len(s) > maxRegexLength {
		return fmt.Errorf("must be 1-%d characters", maxRegexLength)
	}
	inClass := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		next := byte(0)
		if i+1 < len(s) {
			next = s[i+1]
		}
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '\\':
			if next == 0 || strings.IndexByte(regexEscapes, next) < 0 {
				return fmt.Errorf("backslash at offset %d: only \\%s are allowed", i, strings.Join(strings.Split(regexEscapes, ""), " \\"))
			}
			if inClass && strings.IndexByte("dDwWsS", next) >= 0 && i+2 < len(s) && s[i+2] == '-' && i+3 < len(s) && s[i+3] != ']' {
				return fmt.Errorf("range at offset %d starts with a class escape", i)
			}
			i++
		case inClass && c == '-' && next == '\\' && i+2 < len(s) && strings.IndexByte("dDwWsS", s[i+2]) >= 0:
			return fmt.Errorf("range at offset %d ends with a class escape", i)
		case inClass && c == ']':
			inClass = false
		case inClass && c == '[':
			m := posixClassRE.FindString(s[i:])
			if m == "" {
				return fmt.Errorf("'[' at offset %d: inside a class only POSIX classes such as [:alpha:] may open with '['; escape it as \\[", i)
			}
			after := s[i+len(m):]
			if s[i-1] == '-' || (strings.HasPrefix(after, "-") && !strings.HasPrefix(after, "-]")) {
				return fmt.Errorf("range at offset %d starts or ends with a POSIX class", i)
			}
			i += len(m) - 1
		case inClass && (c == '{' || c == '$'):
			return fmt.Errorf("%q at offset %d is not allowed in a class", c, i)
		case c == '[':
			j := i + 1
			if next == '^' {
				j++
			}
			if j < len(s) && strings.IndexByte("]:.=", s[j]) >= 0 {
				return fmt.Errorf("'[' at offset %d: a class may not start with %q", i, s[j])
			}
			inClass = true
			i = j - 1
		case !inClass && c == '^' && next != 0 && strings.IndexByte("*+?{", next) >= 0:
			return fmt.Errorf("quantifier at offset %d follows the anchor '^'", i+1)
		case c == '{':
			m := regexQuantifierRE.FindString(s[i:])
			if m == "" {
				return fmt.Errorf("'{' at offset %d: braces only as {n}, {n,} or {n,m} quantifiers", i)
			}
			i += len(m) - 1
		case c == '$':
			if i != len(s)-1 {
				return fmt.Errorf("'$' at offset %d: only allowed as the final anchor", i)
			}
		case c == '(' && strings.HasPrefix(s[i:], "(?") && !strings.HasPrefix(s[i:], "(?:"):
			return fmt.Errorf("'(?' at offset %d: only non-capturing groups (?:...) are allowed", i)
		case strings.IndexByte(regexLiterals, c) >= 0:
		default:
			return fmt.Errorf("character %q at offset %d is not allowed in a regex", c, i)
		}
	}
	if _, err := regexp.Compile(s); err != nil {
		return fmt.Errorf("does not compile: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	return nil
}

// validateRules checks the routing rules of an app spec.
func (s AppSpec) validateRules(f *fields, p string) {
	if len(s.Rules) > MaxRules {
		f.add(p+".rules", "at most %d rules", MaxRules)
		return
	}
	ids := map[string]bool{}
	for i, r := range s.Rules {
		rp := fmt.Sprintf("%s.rules[%d]", p, i)
		if err := CheckName(r.ID); err != nil {
			f.check(rp+".id", err)
		} else if ids[r.ID] {
			f.add(rp+".id", "is used by an earlier rule")
		}
		ids[r.ID] = true
		if r.Target != "" {
			f.check(rp+".target", CheckName(r.Target))
		}
		if r.Priority < -MaxRulePriority || r.Priority > MaxRulePriority {
			f.add(rp+".priority", "must be between %d and %d", -MaxRulePriority, MaxRulePriority)
		}
		r.Match.validate(f, rp+".match")
		if r.Split != nil {
			r.Split.validate(f, rp+".split", r.Target)
		}
		if r.RateLimit != nil {
			r.RateLimit.validate(f, rp+".rate_limit")
		}
		validateRequestSettings(f, rp, r.MaxBodySize, r.Timeout, r.Headers)
	}
}

// CheckSplitPercent checks the share of a split: more than 0 and less than
// 100, in steps of 0.01.
func CheckSplitPercent(p float64) error {
	if !(p > 0 && p < 100) {
		return fmt.Errorf("must be more than 0 and less than 100")
	}
	c := p * 100
	if math.Abs(c-math.Round(c)) > 1e-6 {
		return fmt.Errorf("must have at most two decimals")
	}
	if r := math.Round(c); r < 1 || r > 9999 {
		return fmt.Errorf("must be between 0.01 and 99.99")
	}
	return nil
}

// SplitPercentString is the share of a split as NGINX's split_clients
// reads it, without the '%': at most two decimals, no exponent.
func SplitPercentString(p float64) string {
	return strconv.FormatFloat(math.Round(p*100)/100, 'f', -1, 64)
}

// validate checks a rule's split; ruleTarget is the rule's target ("" for
// the app itself, whose name the spec does not hold: a split to the app
// itself then only wastes a map).
func (sp Split) validate(f *fields, p, ruleTarget string) {
	if err := CheckName(sp.Target); err != nil {
		f.check(p+".target", err)
	} else if ruleTarget != "" && sp.Target == ruleTarget {
		f.add(p+".target", "is the rule's own target")
	}
	f.check(p+".percent", CheckSplitPercent(sp.Percent))
	if st := sp.Sticky; st != nil {
		switch {
		case (st.Cookie == "") == (st.Header == ""):
			f.add(p+".sticky", "must name exactly one of cookie or header")
		case st.Cookie != "":
			if !cookieNameRE.MatchString(st.Cookie) {
				f.add(p+".sticky.cookie", "must be 1-64 letters, digits, '_' or '-'")
			}
		default:
			f.check(p+".sticky.header", CheckHeaderName(st.Header))
		}
	}
}

func (m RuleMatch) validate(f *fields, p string) {
	switch m.PathType {
	case "", MatchPrefix:
		if m.Path != "" {
			f.check(p+".path", CheckRulePath(m.Path))
		}
	case MatchExact:
		f.check(p+".path", CheckRulePath(m.Path))
	case MatchRegex:
		f.check(p+".path", CheckRegex(m.Path))
	default:
		f.add(p+".path_type", "must be prefix, exact or regex")
	}
	if len(m.Headers) > MaxRuleHeaders {
		f.add(p+".headers", "at most %d headers", MaxRuleHeaders)
		return
	}
	seen := map[string]bool{}
	for i, h := range m.Headers {
		hp := fmt.Sprintf("%s.headers[%d]", p, i)
		if err := CheckHeaderName(h.Name); err != nil {
			f.check(hp+".name", err)
		} else if seen[strings.ToLower(h.Name)] {
			f.add(hp+".name", "is matched by an earlier header of this rule")
		}
		seen[strings.ToLower(h.Name)] = true
		switch h.Type {
		case "", MatchExact:
			if h.Value == "" {
				f.add(hp+".value", "is required with type exact (use type exists for presence)")
			} else {
				f.check(hp+".value", CheckHeaderValue(h.Value))
			}
		case MatchRegex:
			f.check(hp+".value", CheckRegex(h.Value))
		case MatchExists:
			if h.Value != "" {
				f.add(hp+".value", "must be empty with type exists")
			}
		default:
			f.add(hp+".type", "must be exact, regex or exists")
		}
	}
}
