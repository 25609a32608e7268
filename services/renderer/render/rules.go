package render

import (
	"cmp"
	"regexp"
	"slices"
	"strconv"
	"strings"

	crossplane "github.com/nginxinc/nginx-go-crossplane"
	"github.com/orchestry/orchestry/pkg/events"
)

// Routing rules (spec.rules) are decided entirely by http-level maps, never
// by location matching or by "if" on request data:
//
//   - per rule, a map from $uri to 0/1 for its path (prefix and exact paths
//     become anchored, escaped regexes, so that matching is case-sensitive
//     like location matching; a regex is used as written) and one map per
//     header from $http_<name> to 0/1;
//   - per rule with more than one condition, a map from the concatenated
//     0/1 values to 1 when all are 1;
//   - per rule with a split, a split_clients block choosing between the
//     split target's upstream and the rule target's (see splitClients); the
//     rule's route map entry then holds its variable, not an upstream name;
//   - per app, the route map: its source concatenates the rules' 0/1 values
//     in priority order (highest first, ties by id), and the key ^0…01 with
//     i zeros selects rule i's upstream. The first 1 is the highest-priority
//     matching rule, whatever its path type; no 1 is the app itself.
//
// The app's traffic location then proxies to http://$orchestry_route_<app>:
// NGINX looks a variable proxy_pass host up among the defined upstream
// blocks first, so no resolver is involved. Location matching could not
// give these semantics: NGINX prefers "=" then the longest prefix over
// regexes whatever their order, and a location chosen by its path cannot
// fall through to a lower-priority rule when a header condition fails.
//
// A rule whose target is not in the render, or has no instance (so no
// upstream), routes to a 503: the down map turns the chosen upstream name
// into 1 unless it is defined, and the location returns 503 on a plain
// variable test. Refusing the render instead would block every app's
// config on one app's missing peer.

// ruleVarApp is the app name as part of an NGINX variable name ('-' is not
// allowed there; app names hold no '_', and the rule index precedes it, so
// the names stay unique).
func ruleVarApp(app string) string { return strings.ReplaceAll(app, "-", "_") }

func routeVariable(app string) string { return "$orchestry_route_" + ruleVarApp(app) }
func downVariable(app string) string  { return "$orchestry_down_" + ruleVarApp(app) }

// activeRules are the enabled rules in the order they are tried.
func activeRules(rules []events.Rule) []events.Rule {
	var out []events.Rule
	for _, r := range rules {
		if r.IsEnabled() {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b events.Rule) int {
		if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// pathKey is the map key matching a rule's path against $uri, or "" when
// the rule matches every path.
func pathKey(m events.RuleMatch) string {
	switch m.PathType {
	case events.MatchExact:
		return "~^" + regexp.QuoteMeta(m.Path) + `\z`
	case events.MatchRegex:
		return "~" + m.Path
	}
	if m.Path == "" || m.Path == "/" {
		return ""
	}
	return "~^" + regexp.QuoteMeta(m.Path)
}

// headerVariable is NGINX's variable of a request header.
func headerVariable(name string) string {
	return "$http_" + strings.ReplaceAll(strings.ToLower(name), "-", "_")
}

// bitMap maps source to 1 when it matches key (0 otherwise), or, with
// invert, to 0 when it matches and 1 otherwise.
func bitMap(source, variable, key string, invert bool) *crossplane.Directive {
	on, off := "1", "0"
	if invert {
		on, off = off, on
	}
	return blk("map", []string{source, variable},
		d(key, on),
		d("default", off),
	)
}

// braced is a variable written as ${name}, so that it can be followed by
// other text.
func braced(v string) string { return "${" + strings.TrimPrefix(v, "$") + "}" }

// routing is what an app's rules add to its config.
type routing struct {
	// maps are the http-level maps and split_clients blocks.
	maps crossplane.Directives
	// route is the variable holding the upstream to proxy to.
	route string
	// down, when some route can lead to an app without upstream, is the
	// variable that is 1 then.
	down string
	// pick, when some rule has settings of its own, is the variable
	// holding the internal URI of the chosen rule's location (see
	// ruleLocation), empty for requests of other rules.
	pick string
	// own are the rules with settings of their own.
	own []events.Rule
}

// pickVariable holds the rule location a request is sent to.
func pickVariable(app string) string { return "$orchestry_pick_" + ruleVarApp(app) }

// ruleURI is the internal URI of the location of a rule with settings of
// its own. It does not start with '/', so no client request can have it:
// NGINX refuses such a request line with 400.
func ruleURI(id string) string { return "orchestry-rule-" + id }

// ruleRouting returns what the app's rules add to its config; with no
// enabled rule, nothing.
func ruleRouting(a app, upstreams map[string]bool) routing {
	rules := activeRules(a.spec.Rules)
	if len(rules) == 0 {
		return routing{}
	}
	var maps crossplane.Directives
	var picks crossplane.Directives
	var own []events.Rule
	va := ruleVarApp(a.name)
	var sources []string
	targets := []string{a.name}
	var entries crossplane.Directives
	for i, r := range rules {
		prefix := "$orchestry_r" + strconv.Itoa(i)
		var bits []string
		if k := pathKey(r.Match); k != "" {
			v := prefix + "p_" + va
			maps = append(maps, bitMap("$uri", v, k, false))
			bits = append(bits, v)
		}
		for j, h := range r.Match.Headers {
			v := prefix + "h" + strconv.Itoa(j) + "_" + va
			switch h.Type {
			case events.MatchExists:
				maps = append(maps, bitMap(headerVariable(h.Name), v, "", true))
			case events.MatchRegex:
				maps = append(maps, bitMap(headerVariable(h.Name), v, "~"+h.Value, false))
			default:
				maps = append(maps, bitMap(headerVariable(h.Name), v, "~^"+regexp.QuoteMeta(h.Value)+`\z`, false))
			}
			bits = append(bits, v)
		}
		target := r.Target
		if target == "" {
			target = a.name
		}
		targets = append(targets, target)
		value := upstreamName(target)
		if sp := r.Split; sp != nil {
			split, extra := splitClients(prefix, va, sp, target)
			maps = append(maps, extra...)
			maps = append(maps, split)
			targets = append(targets, sp.Target)
			value = split.Args[1]
		}
		key := "~^" + strings.Repeat("0", i) + "1"
		entries = append(entries, d(key, value))
		if r.HasSettings() {
			picks = append(picks, d(key, ruleURI(r.ID)))
			own = append(own, r)
		}
		switch len(bits) {
		case 0:
			// Matches every request: later rules can never win.
			sources = append(sources, "1")
		case 1:
			sources = append(sources, braced(bits[0]))
		default:
			v := prefix + "_" + va
			var src strings.Builder
			for _, b := range bits {
				src.WriteString(braced(b))
			}
			maps = append(maps, bitMap(src.String(), v, strings.Repeat("1", len(bits)), false))
			sources = append(sources, braced(v))
		}
		if len(bits) == 0 {
			break
		}
	}
	route := routeVariable(a.name)
	entries = append(entries, d("default", upstreamName(a.name)))
	source := strings.Join(sources, "")
	maps = append(maps, blk("map", []string{source, route}, entries...))
	var pick string
	if len(picks) > 0 {
		pick = pickVariable(a.name)
		maps = append(maps, blk("map", []string{source, pick}, append(picks, d("default", ""))...))
	}
	var live crossplane.Directives
	seen := map[string]bool{}
	missing := false
	for _, t := range targets {
		if seen[t] {
			continue
		}
		seen[t] = true
		if upstreams[t] {
			live = append(live, d(upstreamName(t), "0"))
		} else {
			missing = true
		}
	}
	var down string
	if missing {
		down = downVariable(a.name)
		maps = append(maps, blk("map", []string{route, down}, append(live, d("default", "1"))...))
	}
	return routing{maps: maps, route: route, down: down, pick: pick, own: own}
}

// splitClients returns the split_clients block of rule i's split (prefix
// is "$orchestry_r<i>"), whose variable holds the upstream of the variant
// chosen for the request, and the map defining its key when sticky.
//
// A split without sticky is keyed on $request_id, so every request is
// placed on its own. A sticky split is keyed on the named cookie or header
// or, when the request lacks it or it is empty, on the client address: a
// client keeps its variant as long as it sends the same value (or, without
// one, comes from the same address). split_clients hashes the key with
// MurmurHash2, so shares hold over many distinct keys; every sticky split
// with the same key and percent places a client alike.
func splitClients(prefix, va string, sp *events.Split, target string) (*crossplane.Directive, crossplane.Directives) {
	key := "$request_id"
	var extra crossplane.Directives
	if st := sp.Sticky; st != nil {
		key = prefix + "k_" + va
		switch {
		case st.Header != "":
			v := headerVariable(st.Header)
			extra = append(extra, blk("map", []string{v, key}, d("", "$remote_addr"), d("default", v)))
		case strings.Contains(st.Cookie, "-"):
			// As in hashKeyVariable: $cookie_<name> cannot hold a '-', so
			// the value is taken from the Cookie header. The name holds
			// only letters, digits, '_' and '-', all literal in a regex.
			extra = append(extra, blk("map", []string{"$http_cookie", key},
				d(cookieRegexPrefix+st.Cookie+"=([^;]+)", "$1"),
				d("default", "$remote_addr"),
			))
		default:
			v := "$cookie_" + st.Cookie
			extra = append(extra, blk("map", []string{v, key}, d("", "$remote_addr"), d("default", v)))
		}
	}
	return blk("split_clients", []string{key, prefix + "s_" + va},
		d(events.SplitPercentString(sp.Percent)+"%", upstreamName(sp.Target)),
		d("*", upstreamName(target)),
	), extra
}

// mapBuilder writes a top-level map block of an app file, quoting every key
// (which may come from the user) as one argument with quoteArg.
type mapBuilder struct{}

// Build implements crossplane.Builder.
func (mapBuilder) Build(stmt *crossplane.Directive) string {
	var sb strings.Builder
	sb.WriteString(stmt.Directive)
	for _, a := range stmt.Args {
		sb.WriteByte(' ')
		sb.WriteString(crossplane.Enquote(a))
	}
	sb.WriteString(" {")
	for _, e := range stmt.Block {
		sb.WriteString("\n    ")
		sb.WriteString(quoteArg(e.Directive))
		for _, a := range e.Args {
			sb.WriteByte(' ')
			sb.WriteString(crossplane.Enquote(a))
		}
		sb.WriteByte(';')
	}
	sb.WriteString("\n}")
	return sb.String()
}
