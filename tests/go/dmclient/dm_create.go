package main

// `dm create`: docker-machine's cmdCreateOuter/cmdCreateInner and
// libmachine's Client.Create/performCreate, minus SSH provisioning.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

var validHostName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9\-\.]*$`)

// flagHackLookup finds the driver name among the raw arguments before any
// flag parsing ("-d x", "--driver x", "-d=x", "--driver=x"), as docker-machine
// must know the driver to know which flags exist.
func flagHackLookup(args []string) string {
	for i, arg := range args {
		if !strings.Contains(arg, "-d") {
			continue
		}
		if arg == "-d" || arg == "--driver" {
			if i+1 < len(args) {
				return args[i+1]
			}
		}
		if strings.HasPrefix(arg, "-d=") || strings.HasPrefix(arg, "--driver=") {
			return strings.Split(arg, "=")[1]
		}
	}
	return ""
}

// newHost starts a plugin for a new machine (libmachine Client.NewHost):
// openDriver, then GetMachineName and DriverName for the Host.
func (m *dm) newHost(driverName string, raw []byte) (*Host, *Driver, error) {
	d, err := m.openDriver(driverName, raw)
	if err != nil {
		return nil, nil, err
	}
	h := &Host{ConfigVersion: configVersion, Name: d.GetMachineName(), DriverName: d.DriverName(), drv: d}
	return h, d, nil
}

func (m *dm) cmdCreate(args []string) error {
	// Plugin #1 only tells which flags exist; it stays open (and
	// heartbeated) until the command ends.
	driverName := flagHackLookup(args)
	if driverName == "" {
		if driverName = os.Getenv("MACHINE_DRIVER"); driverName == "" {
			driverName = "virtualbox"
		}
	}
	lookupRaw, _ := json.Marshal(baseDriver{MachineName: "flag-lookup"})
	_, lookup, err := m.newHost(driverName, lookupRaw)
	if err != nil {
		return err
	}
	dflags, err := driverCliFlags(lookup.GetCreateFlags())
	if err != nil {
		return fmt.Errorf("Error trying to convert provided driver flags to cli flags: %s", err)
	}
	fs := newFlagSet(append(m.sharedCreateFlags(), dflags...))
	help := "Usage: docker-machine create [OPTIONS] [arg...]\n\nCreate a machine\n\nOptions:\n" + fs.Help()
	pos, err := fs.Parse(args, false)
	if err == errHelp {
		fmt.Print(help)
		return errHelp
	}
	if err != nil {
		return usageError{err, help}
	}
	return m.createInner(fs, pos, help)
}

func validateSwarmDiscovery(discovery string) error {
	if discovery == "" || regexp.MustCompile(`[^:]*://.*`).MatchString(discovery) {
		return nil
	}
	return fmt.Errorf("Swarm Discovery URL was in the wrong format: %s", discovery)
}

func (m *dm) createInner(fs *flagSet, pos []string, help string) error {
	if len(pos) > 1 {
		return fmt.Errorf("Invalid command line. Found extra arguments %v", pos[1:])
	}
	name := ""
	if len(pos) == 1 {
		name = pos[0]
	}
	if name == "" {
		fmt.Print(help)
		return errors.New("Error: No machine name specified")
	}
	if !validHostName.MatchString(name) {
		return errors.New("Error creating machine: Invalid hostname specified. Allowed hostname chars are: 0-9a-zA-Z . -")
	}
	if err := validateSwarmDiscovery(fs.String("swarm-discovery")); err != nil {
		return fmt.Errorf("Error parsing swarm discovery: %s", err)
	}

	// Plugin #2 does the work.
	raw, _ := json.Marshal(baseDriver{MachineName: name, StorePath: m.store.Path})
	h, d, err := m.newHost(fs.String("driver"), raw)
	if err != nil {
		return fmt.Errorf("Error getting new host: %s", err)
	}
	machineDir := m.store.hostDir(name)
	h.HostOptions = &HostOptions{
		AuthOptions: &AuthOptions{
			CertDir:          m.store.CertDir,
			CaCertPath:       m.store.CaCert,
			CaPrivateKeyPath: m.store.CaKey,
			ClientCertPath:   m.store.ClientCert,
			ClientKeyPath:    m.store.ClientKey,
			ServerCertPath:   filepath.Join(machineDir, "server.pem"),
			ServerKeyPath:    filepath.Join(machineDir, "server-key.pem"),
			StorePath:        machineDir,
			ServerCertSANs:   fs.Slice("tls-san"),
		},
		EngineOptions: &EngineOptions{
			ArbitraryFlags:   fs.Slice("engine-opt"),
			Env:              fs.Slice("engine-env"),
			InsecureRegistry: fs.Slice("engine-insecure-registry"),
			Labels:           fs.Slice("engine-label"),
			RegistryMirror:   fs.Slice("engine-registry-mirror"),
			StorageDriver:    fs.String("engine-storage-driver"),
			TLSVerify:        true,
			InstallURL:       fs.String("engine-install-url"),
		},
		SwarmOptions: &SwarmOptions{
			IsSwarm:            fs.Bool("swarm") || fs.Bool("swarm-master"),
			Image:              fs.String("swarm-image"),
			Agent:              fs.Bool("swarm"),
			Master:             fs.Bool("swarm-master"),
			Discovery:          fs.String("swarm-discovery"),
			Address:            fs.String("swarm-addr"),
			Host:               fs.String("swarm-host"),
			Strategy:           fs.String("swarm-strategy"),
			ArbitraryFlags:     fs.Slice("swarm-opt"),
			ArbitraryJoinFlags: fs.Slice("swarm-join-opt"),
			IsExperimental:     fs.Bool("swarm-experimental"),
		},
	}
	exists, err := m.store.Exists(h.Name)
	if err != nil {
		return fmt.Errorf("Error checking if host exists: %s", err)
	}
	if exists {
		return fmt.Errorf("Docker machine %q already exists", h.Name)
	}

	if err := d.SetConfigFromFlags(driverOpts(d.GetCreateFlags(), fs)); err != nil {
		return fmt.Errorf("Error setting machine configuration from flags provided: %s", err)
	}
	if err := m.apiCreate(h, d, fs); err != nil {
		// docker-machine waits for the plugin's last log lines.
		time.Sleep(2 * time.Second)
		return err
	}
	if err := m.store.Save(h); err != nil {
		return fmt.Errorf("Error attempting to save store: %s", err)
	}
	m.log.Infof("To see how to connect your Docker Client to the Docker Engine running on this virtual machine, run: %s env %s", "docker-machine", name)
	// The inner command's client is closed before the flag-lookup one.
	d.Close()
	return nil
}

// apiCreate is libmachine's Client.Create (with GitLab's fork: the TLS
// bootstrap handed to a driver that asks for it, before Create).
func (m *dm) apiCreate(h *Host, d *Driver, fs *flagSet) error {
	if err := m.bootstrapCertificates(h.HostOptions.AuthOptions); err != nil {
		return fmt.Errorf("Error generating certificates: %s", err)
	}
	m.log.Infof("Running pre-create checks...")
	m.mark("pre_create_called")
	if err := d.Void("PreCreateCheck"); err != nil {
		return errPreCreate{Cause: err}
	}
	if err := m.store.Save(h); err != nil {
		return fmt.Errorf("Error saving host to store before attempting creation: %s", err)
	}
	bootstrapped := false
	if m.fork {
		var err error
		if bootstrapped, err = m.prepareTLSBootstrap(h, d); err != nil {
			return fmt.Errorf("Error creating machine: %s", err)
		}
	}
	m.log.Infof("Creating machine...")
	if err := m.performCreate(h, d, bootstrapped); err != nil {
		return fmt.Errorf("Error creating machine: %s", err)
	}
	m.log.Debugf("Reticulating splines...")
	return nil
}

// performCreate is libmachine's Client.performCreate up to the SSH wait (or,
// for a TLS-bootstrapped machine of GitLab's fork, the TLS wait).
func (m *dm) performCreate(h *Host, d *Driver, bootstrapped bool) error {
	m.mark("create_called")
	err := d.Void("Create")
	m.mark("create_returned")
	if err != nil {
		if m.fork {
			// GitLab's fork saves the host after a failed create: one more
			// GetConfigRaw, and config.json holds what the driver reports now.
			if serr := m.store.Save(h); serr != nil {
				m.log.Debugf("Error saving host after the failed create: %s", serr)
			}
		}
		return fmt.Errorf("Error in driver during machine creation: %s", err)
	}
	if err := m.store.Save(h); err != nil {
		return fmt.Errorf("Error saving host to store after attempting creation: %s", err)
	}
	if d.DriverName() == "none" || d.DriverName() == "ci-test" {
		return nil
	}
	m.log.Infof("Waiting for machine to be running, this may take a few minutes...")
	if err := m.waitFor(m.machineInState(h, StateRunning)); err != nil {
		return fmt.Errorf("Error waiting for machine to be running: %s", err)
	}
	if bootstrapped {
		return m.waitForTLS(h, d)
	}
	m.log.Infof("Detecting operating system of created instance...")
	m.skipProvisioning()
	if err := copyClientCerts(h.HostOptions.AuthOptions); err != nil {
		return fmt.Errorf("Error running provisioning: %s", err)
	}
	return nil
}
