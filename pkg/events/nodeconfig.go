package events

// NodeConfig is the renderer's answer on RendererConfig(node): the config
// files NGINX runs now, read from the node's live directory. It never holds
// a certificate or a private key: those live outside the config directory,
// and the renderer skips any file that looks like one.
type NodeConfig struct {
	Node string `json:"node"`
	// Version is the live config version; 0 when the node has no live
	// config yet (Files is then empty).
	Version uint64 `json:"version"`
	// Hash is the live config's hash, as in RenderReport.Hash.
	Hash string `json:"hash"`
	// Files are the live config files, sorted by path.
	Files []ConfigFile `json:"files"`
	// Omitted are the paths left out because the answer would not fit in
	// one NATS message; empty when every file is in Files.
	Omitted []string `json:"omitted,omitempty"`
	// Error says why the renderer could not read its live config; Files is
	// then empty.
	Error string `json:"error,omitempty"`
}

// ConfigFile is one file of a NodeConfig.
type ConfigFile struct {
	// Path is relative to the config directory, with '/' separators
	// ("nginx.conf", "apps/web.conf").
	Path    string `json:"path"`
	Content string `json:"content"`
}
