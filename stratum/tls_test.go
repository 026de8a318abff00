package stratum

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lode-pool/lode/bench/miner"
)

// writeCert writes a self-signed certificate for 127.0.0.1 and its key.
func writeCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "lode test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// Two ports: plain TCP for small devices at a low difficulty, TLS for farms
// at a higher one. Each applies its own difficulty bounds.
func TestTwoPortsWithTLS(t *testing.T) {
	certFile, keyFile, roots := writeCert(t)
	h := startServer(t, func(c *Config) {
		c.Ports = append(c.Ports, Port{Address: "127.0.0.1:0", StartDifficulty: 2 * testDiff, MinDifficulty: 2 * testDiff, MaxDifficulty: 1, TLSCertFile: certFile, TLSKeyFile: keyFile})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tlsAddr := h.srv.Addrs()[1].String()
	m, err := miner.Dial(ctx, miner.Config{Address: tlsAddr, TLS: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}, Username: testAddress(t, 95), SuggestDifficulty: testDiff})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if st, err := m.Run(ctx, 2); err != nil || st.Accepted != 2 {
		t.Fatalf("TLS miner: %v %+v", err, st)
	}
	// The suggestion is clamped to the TLS port's minimum.
	if d := m.Difficulty(); d != 2*testDiff {
		t.Fatalf("TLS port difficulty %v", d)
	}
	plain, err := miner.Dial(ctx, miner.Config{Address: h.addr, Username: testAddress(t, 96)})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if st, err := plain.Run(ctx, 1); err != nil || st.Accepted != 1 || plain.Difficulty() != testDiff {
		t.Fatalf("plain miner: %v %+v diff %v", err, st, plain.Difficulty())
	}
	// A plain-text client on the TLS port gets nowhere and is closed.
	c := dial(t, tlsAddr)
	c.write(`{"id":1,"method":"mining.subscribe","params":[]}` + "\n")
	c.expectClosed()
}
