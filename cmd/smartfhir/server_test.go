package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBodyLimitFlag(t *testing.T) {
	s := startServer(t, "--max-body-bytes", "2048")
	big := `{"resourceType":"Patient","name":[{"family":"` + strings.Repeat("x", 4096) + `"}]}`
	res, err := http.Post(s.BaseURL+"/fhir/Patient", "application/fhir+json", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var oo struct{ ResourceType string }
	if res.StatusCode != http.StatusRequestEntityTooLarge || json.Unmarshal(body, &oo) != nil || oo.ResourceType != "OperationOutcome" {
		t.Errorf("POST of 4 KB with a 2 KB limit = %d %s, want 413 with an OperationOutcome", res.StatusCode, body)
	}
	small := `{"resourceType":"Patient","name":[{"family":"Small"}]}`
	res, err = http.Post(s.BaseURL+"/fhir/Patient", "application/fhir+json", strings.NewReader(small))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Errorf("POST under the limit = %d, want 201", res.StatusCode)
	}
}

// TestTLS serves HTTPS with a self-signed certificate: TLS 1.3 is chosen
// when the client offers it, TLS 1.2 still works, older versions fail, and
// the base URL and HSTS header follow.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	s := startServer(t, "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(s.BaseURL, "https://") {
		t.Fatalf("BaseURL = %q, want https", s.BaseURL)
	}
	get := func(minV, maxV uint16) (*http.Response, error) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: minV, MaxVersion: maxV}}}
		return c.Get(s.BaseURL + "/fhir/metadata")
	}
	res, err := get(tls.VersionTLS12, tls.VersionTLS13)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.TLS.Version != tls.VersionTLS13 {
		t.Errorf("negotiated %x, want TLS 1.3", res.TLS.Version)
	}
	if res.Header.Get("Strict-Transport-Security") == "" {
		t.Error("no Strict-Transport-Security header over TLS")
	}
	if res, err = get(tls.VersionTLS12, tls.VersionTLS12); err != nil {
		t.Errorf("TLS 1.2 client: %v", err)
	} else {
		res.Body.Close()
	}
	if _, err = get(tls.VersionTLS10, tls.VersionTLS11); err == nil {
		t.Error("a TLS 1.1 client connected; want TLS 1.2 minimum")
	}
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestGracefulShutdown: a request in flight when Close is called is
// answered, and the data written survives a restart on the same directory.
func TestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	start := func() *Main {
		m := NewMain(io.Discard, io.Discard)
		if err := m.ParseFlags([]string{"--addr", "127.0.0.1:0", "--data-dir", dir}); err != nil {
			t.Fatal(err)
		}
		if err := m.Run(t.Context()); err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := start()
	// The token is stored in the database too: it works after the restart.
	token := (&testServer{Main: m, BaseURL: m.BaseURL, DataDir: dir}).systemToken(t, "system/*.cruds")
	req, _ := http.NewRequest(http.MethodPost, m.BaseURL+"/fhir/Patient", bytes.NewReader([]byte(`{"resourceType":"Patient","gender":"other"}`)))
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := rawClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc := res.Header.Get("Location")
	if res.StatusCode != 201 || loc == "" {
		t.Fatalf("create = %d, Location %q", res.StatusCode, loc)
	}
	path := strings.TrimPrefix(loc, m.BaseURL)
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := http.Get(m.BaseURL + "/healthz"); err == nil {
		t.Error("the server still answers after Close")
	}
	m2 := start()
	defer m2.Close()
	req, _ = http.NewRequest(http.MethodGet, m2.BaseURL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err = rawClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("GET %s after restart = %d, want 200", path, res.StatusCode)
	}
}
