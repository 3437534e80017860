package main

// The machine store, laid out like docker-machine's persist.Filestore:
// <store>/machines/<name>/config.json (ConfigVersion 3) and <store>/certs.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// configVersion is docker-machine's libmachine/version.ConfigVersion.
const configVersion = 3

// baseDriver is docker-machine's drivers.BaseDriver: the JSON sent with
// SetConfigRaw when a machine is created (field order = JSON key order).
type baseDriver struct {
	IPAddress      string
	MachineName    string
	SSHUser        string
	SSHPort        int
	SSHKeyPath     string
	StorePath      string
	SwarmMaster    bool
	SwarmHost      string
	SwarmDiscovery string
}

// Host is config.json (libmachine/host.Host). Driver holds the plugin's
// GetConfigRaw JSON; on load, the raw bytes of the member as in the file.
type Host struct {
	ConfigVersion int
	Driver        json.RawMessage
	DriverName    string
	HostOptions   *HostOptions
	Name          string

	drv machineDriver
}

// HostOptions is libmachine/host.Options.
type HostOptions struct {
	Driver        string
	Memory        int
	Disk          int
	EngineOptions *EngineOptions
	SwarmOptions  *SwarmOptions
	AuthOptions   *AuthOptions
}

// EngineOptions is libmachine/engine.Options.
type EngineOptions struct {
	ArbitraryFlags   []string
	DNS              []string `json:"Dns"`
	GraphDir         string
	Env              []string
	Ipv6             bool
	InsecureRegistry []string
	Labels           []string
	LogLevel         string
	StorageDriver    string
	SelinuxEnabled   bool
	TLSVerify        bool `json:"TlsVerify"`
	RegistryMirror   []string
	InstallURL       string
}

// SwarmOptions is libmachine/swarm.Options.
type SwarmOptions struct {
	IsSwarm            bool
	Address            string
	Discovery          string
	Agent              bool
	Master             bool
	Host               string
	Image              string
	Strategy           string
	Heartbeat          int
	Overcommit         float64
	ArbitraryFlags     []string
	ArbitraryJoinFlags []string
	Env                []string
	IsExperimental     bool
}

// AuthOptions is libmachine/auth.Options.
type AuthOptions struct {
	CertDir              string
	CaCertPath           string
	CaPrivateKeyPath     string
	CaCertRemotePath     string
	ServerCertPath       string
	ServerKeyPath        string
	ClientKeyPath        string
	ServerCertRemotePath string
	ServerKeyRemotePath  string
	ClientCertPath       string
	ServerCertSANs       []string
	StorePath            string
	// ServerName: GitLab's fork, TLS bootstrap only (the server certificate
	// is valid for the machine name, which clients verify against).
	ServerName string `json:",omitempty"`
}

// errHostDoesNotExist is mcnerror.ErrHostDoesNotExist.
type errHostDoesNotExist struct{ Name string }

func (e errHostDoesNotExist) Error() string {
	return fmt.Sprintf("Docker machine %q does not exist. Use \"docker-machine ls\" to list machines. Use \"docker-machine create\" to add a new one.", e.Name)
}

// defaultStore is docker-machine's default store, ~/.docker/machine.
func defaultStore() string {
	home, err := os.UserHomeDir()
	if err != nil {
		home = ""
	}
	return filepath.Join(home, ".docker", "machine")
}

type store struct {
	Path       string // the storage path (--storage-path)
	CertDir    string
	CaCert     string
	CaKey      string
	ClientCert string
	ClientKey  string
}

func newStore(path, caCert, caKey, clientCert, clientKey string) *store {
	certDir := filepath.Join(path, "certs")
	or := func(v, file string) string {
		if v != "" {
			return v
		}
		return filepath.Join(certDir, file)
	}
	return &store{
		Path:       path,
		CertDir:    certDir,
		CaCert:     or(caCert, "ca.pem"),
		CaKey:      or(caKey, "ca-key.pem"),
		ClientCert: or(clientCert, "cert.pem"),
		ClientKey:  or(clientKey, "key.pem"),
	}
}

func (s *store) machinesDir() string           { return filepath.Join(s.Path, "machines") }
func (s *store) hostDir(name string) string    { return filepath.Join(s.machinesDir(), name) }
func (s *store) configPath(name string) string { return filepath.Join(s.hostDir(name), "config.json") }

// Exists reports whether the machine's directory exists.
func (s *store) Exists(name string) (bool, error) {
	_, err := os.Stat(s.hostDir(name))
	if os.IsNotExist(err) {
		return false, nil
	}
	return err == nil, err
}

// List returns the machine names: non-hidden directories under machines/.
func (s *store) List() ([]string, error) {
	entries, err := os.ReadDir(s.machinesDir())
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	names := []string{}
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Read parses config.json without starting the plugin.
func (s *store) Read(name string) (*Host, error) {
	if _, err := os.Stat(s.hostDir(name)); os.IsNotExist(err) {
		return nil, errHostDoesNotExist{Name: name}
	}
	data, err := os.ReadFile(s.configPath(name))
	if err != nil {
		return nil, err
	}
	var meta struct{ ConfigVersion int }
	if err := json.Unmarshal(data, &meta); err != nil {
		return nil, fmt.Errorf("error getting migrated host: %s", err)
	}
	if meta.ConfigVersion != configVersion {
		return nil, fmt.Errorf("error getting migrated host: config version %d is not supported by the dmclient stand-in (only %d)", meta.ConfigVersion, configVersion)
	}
	h := &Host{}
	if err := json.Unmarshal(data, h); err != nil {
		return nil, fmt.Errorf("error getting migrated host: %s", err)
	}
	h.Name = name
	return h, nil
}

// Save writes config.json with the driver's current GetConfigRaw JSON,
// indented with 4 spaces like docker-machine's Filestore.Save.
func (s *store) Save(h *Host) error {
	raw, err := h.drv.GetConfigRaw()
	if err != nil {
		return fmt.Errorf("json: error calling MarshalJSON for type *rpcdriver.RPCClientDriver: %s", err)
	}
	h.Driver = raw
	data, err := json.MarshalIndent(h, "", "    ")
	if err != nil {
		return err
	}
	dir := s.hostDir(h.Name)
	if err := os.MkdirAll(dir, 0700); err != nil {
		return err
	}
	file := s.configPath(h.Name)
	if _, err := os.Stat(file); os.IsNotExist(err) {
		return os.WriteFile(file, data, 0600)
	}
	// Replace an existing file through a temporary one, as docker-machine does.
	tmp, err := os.CreateTemp(dir, "config.json.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0600); err != nil {
		return err
	}
	if err := os.Remove(file); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

// Remove deletes the machine's directory.
func (s *store) Remove(name string) error {
	return os.RemoveAll(s.hostDir(name))
}
