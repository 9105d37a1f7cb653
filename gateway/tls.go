package gateway

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
)

// certReloader serves the node's certificate and re-reads the files on
// Reload (SIGHUP), so a renewed certificate needs no restart. Handshakes
// read the current certificate lock-free.
type certReloader struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	return r, r.Reload()
}

// Reload reads the files again; on error the previous certificate stays.
func (r *certReloader) Reload() error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	r.cert.Store(&c)
	return nil
}

// Config returns a server TLS configuration using the current certificate.
func (r *certReloader) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return r.cert.Load(), nil
		},
	}
}
