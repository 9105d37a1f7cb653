package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/gateway/config"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with the serial.
func writeCert(t *testing.T, dir string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "camgate test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: nil,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func servedSerial(t *testing.T, addr string) int64 {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestTLS: HTTPS and RTSPS with the node's certificate; a reload picks up a
// renewed certificate without a restart.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, 1)
	n := startNodeWith(t, t.TempDir(), func(c *config.Config) {
		c.TLS = config.TLS{CertFile: certFile, KeyFile: keyFile}
		c.RTSP.RTSPSListen = "127.0.0.1:0"
	})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	res, err := client.Get("https://" + n.g.HTTPAddr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("https healthz: %s", res.Status)
	}
	mustPutTLS(t, client, n, "/subjects/alice", `{"kind":"user"}`)
	mustPutTLS(t, client, n, "/grants/a", `{"subject":"alice","device":"cam1","actions":["live","sound"]}`)
	got, err := probeCodecs(t, "rtsps://"+n.g.RTSPSAddr().String()+"/cam1?token="+viewerToken(t, "alice"))
	if err != nil || got != "h264,opus" {
		t.Fatalf("ffprobe over RTSPS: %q %v", got, err)
	}

	if s := servedSerial(t, n.g.HTTPAddr().String()); s != 1 {
		t.Fatalf("serial %d before renewal", s)
	}
	writeCert(t, dir, 2)
	if err := n.g.certs.Reload(); err != nil {
		t.Fatal(err)
	}
	if s := servedSerial(t, n.g.RTSPSAddr().String()); s != 2 {
		t.Fatalf("RTSPS serves serial %d after reload, want 2", s)
	}
}

func mustPutTLS(t *testing.T, c *http.Client, n *node, path, body string) {
	t.Helper()
	req, _ := http.NewRequest("PUT", "https://"+n.g.HTTPAddr().String()+"/api/v1"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		t.Fatalf("PUT %s: %s", path, res.Status)
	}
}
