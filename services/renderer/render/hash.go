package render

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
)

// hashFiles is the hex sha256 over the sorted file names and contents, each
// length-prefixed so that no two different file sets hash alike, leaving
// out the file named skip.
func hashFiles(files map[string][]byte, skip string) string {
	names := make([]string, 0, len(files))
	for n := range files {
		if n != skip {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	h := sha256.New()
	var n [8]byte
	for _, name := range names {
		binary.BigEndian.PutUint64(n[:], uint64(len(name)))
		h.Write(n[:])
		h.Write([]byte(name))
		binary.BigEndian.PutUint64(n[:], uint64(len(files[name])))
		h.Write(n[:])
		h.Write(files[name])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// hashWith is the hex sha256 of a hash and one more content.
func hashWith(hash string, content []byte) string {
	h := sha256.New()
	h.Write([]byte(hash))
	h.Write([]byte{0})
	h.Write(content)
	return hex.EncodeToString(h.Sum(nil))
}
