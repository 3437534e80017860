package main

// The CA and client certificate docker-machine creates in <store>/certs on
// the first `create` (libmachine/cert BootstrapCertificates): RSA 2048,
// organisation = $USER, printed as "Creating CA: ..." and "Creating client
// certificate: ...".

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

const certBits = 2048

func certUsername() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

func certTemplate(org string) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	// Valid from a few minutes ago (clock skew), for 1080 days.
	notBefore := time.Now().Add(-5 * time.Minute).Truncate(time.Minute)
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{org}},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(24 * time.Hour * 1080),
		KeyUsage:              x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement,
		BasicConstraintsValid: true,
	}, nil
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: typ, Bytes: der}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func generateCA(certPath, keyPath, org string) error {
	tmpl, err := certTemplate(org)
	if err != nil {
		return err
	}
	tmpl.IsCA = true
	tmpl.KeyUsage |= x509.KeyUsageCertSign
	key, err := rsa.GenerateKey(rand.Reader, certBits)
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0644); err != nil {
		return err
	}
	return writePEM(keyPath, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), 0600)
}

func readCA(certPath, keyPath string) (*x509.Certificate, *rsa.PrivateKey, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("invalid PEM data")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParsePKCS1PrivateKey(kb.Bytes)
	return cert, key, err
}

func generateClientCert(certPath, keyPath, caCertPath, caKeyPath, org string) error {
	ca, caKey, err := readCA(caCertPath, caKeyPath)
	if err != nil {
		return err
	}
	tmpl, err := certTemplate(org)
	if err != nil {
		return err
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	key, err := rsa.GenerateKey(rand.Reader, certBits)
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0644); err != nil {
		return err
	}
	return writePEM(keyPath, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), 0600)
}

// generateServerCert makes a server certificate for hosts (names or IPs),
// signed by the CA, like libmachine/cert's GenerateCert for a server.
func generateServerCert(certPath, keyPath, caCertPath, caKeyPath, org string, hosts []string) error {
	ca, caKey, err := readCA(caCertPath, caKeyPath)
	if err != nil {
		return err
	}
	tmpl, err := certTemplate(org)
	if err != nil {
		return err
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, certBits)
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0644); err != nil {
		return err
	}
	return writePEM(keyPath, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), 0600)
}

func missing(path string) bool {
	_, err := os.Stat(path)
	return os.IsNotExist(err)
}

// bootstrapCertificates creates the CA and the client certificate if they
// do not exist yet.
func (m *dm) bootstrapCertificates(a *AuthOptions) error {
	if err := os.MkdirAll(a.CertDir, 0700); err != nil {
		return fmt.Errorf("Creating machine certificate dir failed: %s", err)
	}
	org := certUsername()
	if missing(a.CaCertPath) {
		m.log.Infof("Creating CA: %s", a.CaCertPath)
		if !missing(a.CaPrivateKeyPath) {
			return errors.New("certificate authority key already exists")
		}
		if err := generateCA(a.CaCertPath, a.CaPrivateKeyPath, org); err != nil {
			return fmt.Errorf("Generating CA certificate failed: %s", err)
		}
	}
	if missing(a.ClientCertPath) {
		m.log.Infof("Creating client certificate: %s", a.ClientCertPath)
		if !missing(a.ClientKeyPath) {
			return errors.New("client key already exists")
		}
		if err := generateClientCert(a.ClientCertPath, a.ClientKeyPath, a.CaCertPath, a.CaPrivateKeyPath, org+".<bootstrap>"); err != nil {
			return fmt.Errorf("Generating client certificate failed: %s", err)
		}
	}
	return nil
}

// copyClientCerts puts ca.pem, cert.pem and key.pem into the machine's
// directory, the local part of docker-machine's provisioning (ConfigureAuth)
// that gitlab-runner relies on: it uses that directory as DOCKER_CERT_PATH.
func copyClientCerts(a *AuthOptions) error {
	for src, name := range map[string]string{a.CaCertPath: "ca.pem", a.ClientCertPath: "cert.pem", a.ClientKeyPath: "key.pem"} {
		if err := copyFile(src, filepath.Join(a.StorePath, name)); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
