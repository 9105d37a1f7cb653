package hls

import (
	"sync"

	"github.com/bluenviron/gohlslib/v2"
)

// fileCacheSize is how many media files a camera variant keeps: with 200 ms
// parts and 1 s segments, video and audio together make about 12 files a
// second, so this covers the last couple of seconds, where live players
// fetch. Older files are still served, through gohlslib.
const fileCacheSize = 32

// cachedFile is a finished init file, segment or part. Its bytes never
// change: gohlslib names each file once per muxer (random prefix, sequence
// number), so a name maps to one content for the muxer's life.
type cachedFile struct {
	body        []byte
	contentType string
}

// fileCache keeps the newest finished media files of one gohlslib Muxer so
// that the many viewers of a camera are served from memory without a trip
// through gohlslib's net/http handler (which costs a copy per part buffer,
// four allocations and, for parts, a goroutine). Authorization is unchanged:
// it happens before the cache is consulted.
type fileCache struct {
	mu    sync.RWMutex // guards everything below
	owner *gohlslib.Muxer
	files map[string]*cachedFile
	order []string // insertion order, oldest first
}

// get returns the file if it is cached for muxer m.
func (c *fileCache) get(m *gohlslib.Muxer, name string) *cachedFile {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.owner != m {
		return nil
	}
	return c.files[name]
}

// put stores a copy of a file muxer m served, evicting the oldest.
func (c *fileCache) put(m *gohlslib.Muxer, name string, body []byte, contentType string) {
	f := &cachedFile{body: append([]byte(nil), body...), contentType: contentType}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.owner != m {
		c.owner = m
		c.files = make(map[string]*cachedFile, fileCacheSize)
		c.order = c.order[:0]
	}
	if _, ok := c.files[name]; ok {
		return
	}
	if len(c.order) >= fileCacheSize {
		delete(c.files, c.order[0])
		c.order = append(c.order[:0], c.order[1:]...)
	}
	c.files[name] = f
	c.order = append(c.order, name)
}
