package main

// What GitLab's docker-machine fork (v0.16.2-gitlab.N, later versions; see
// shared/reference/GITLAB-FORK.md) does differently, with --gitlab-fork:
//   - the shared create flag tls-bootstrap-lock, which reaches the plugin's
//     SetConfigFromFlags like every create flag;
//   - the TLS bootstrap: a driver answering TLSBootstrapRequested with true
//     gets the CA, a server certificate valid for the machine name and the
//     Docker daemon drop-in with SetTLSBootstrap before Create, and SSH
//     provisioning is skipped for a TLS handshake on the Docker port;
//   - the host is saved after a failed Create (one more GetConfigRaw);
//   - `update-labels NAME --label k=v` (UpdateLabels);
//   - MACHINE_PLUGIN_LOG_FORMAT for plugins, JSON lines re-emitted.
// Not modelled: WaitFor's random 0-9 s on top of the poll interval.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"dmclient/drivers"
)

// forkSharedCreateFlags are the fork's create flags on top of upstream's.
var forkSharedCreateFlags = []cliFlag{
	{Name: "tls-bootstrap-lock", Kind: kindBool, EnvVar: "MACHINE_TLS_BOOTSTRAP_LOCK", Usage: "Serialise TLS bootstrap certificate generation across docker-machine processes"},
}

// sharedCreateFlags are docker-machine's own create flags (the fork's too
// with --gitlab-fork).
func (m *dm) sharedCreateFlags() []cliFlag {
	flags := append([]cliFlag{}, sharedCreateFlags...)
	if m.fork {
		flags = append(flags, forkSharedCreateFlags...)
	}
	return flags
}

// The remote paths docker-machine's systemd provisioners use
// (setRemoteAuthOptions with GetDockerOptionsDir() = /etc/docker).
const (
	remoteCaCert     = "/etc/docker/ca.pem"
	remoteServerCert = "/etc/docker/server.pem"
	remoteServerKey  = "/etc/docker/server-key.pem"
	dockerPort       = 2376
)

// cosDropinTemplate is the fork's Docker daemon drop-in for the TLS
// bootstrap: its Google COS provisioner's template, byte for byte.
const cosDropinTemplate = `[Service]
ExecStart=
ExecStart=/usr/bin/dockerd -H tcp://0.0.0.0:{{.DockerPort}} -H unix:///var/run/docker.sock --tlsverify --tlscacert {{.CaCertRemotePath}} --tlscert {{.ServerCertRemotePath}} --tlskey {{.ServerKeyRemotePath}} {{ range .Labels }}--label {{.}} {{ end }}{{ range .InsecureRegistry }}--insecure-registry {{.}} {{ end }}{{ range .RegistryMirror }}--registry-mirror {{.}} {{ end }}{{ range .ArbitraryFlags }}--{{.}} {{ end }}
Environment={{range .Env}}{{ printf "%q" . }} {{end}}
`

// daemonDropin renders the drop-in for a driver and the engine options.
func daemonDropin(driverName string, e *EngineOptions) ([]byte, error) {
	t, err := template.New("engineConfig").Parse(cosDropinTemplate)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err = t.Execute(&b, map[string]interface{}{
		"DockerPort":           dockerPort,
		"CaCertRemotePath":     remoteCaCert,
		"ServerCertRemotePath": remoteServerCert,
		"ServerKeyRemotePath":  remoteServerKey,
		"Labels":               append(append([]string{}, e.Labels...), "provider="+driverName),
		"InsecureRegistry":     e.InsecureRegistry,
		"RegistryMirror":       e.RegistryMirror,
		"ArbitraryFlags":       e.ArbitraryFlags,
		"Env":                  e.Env,
	})
	return b.Bytes(), err
}

// prepareTLSBootstrap asks the driver whether it delivers the TLS material
// at create time and, if so, generates it (the CA and client certificates
// copied into the machine directory, a server certificate for the machine
// name) and hands it over. It reports whether the machine is bootstrapped.
func (m *dm) prepareTLSBootstrap(h *Host, d *Driver) (bool, error) {
	requested, err := d.TLSBootstrapRequested()
	if err != nil || !requested {
		return false, err
	}
	m.log.Infof("Generating the server certificate and Docker configuration...")
	a := h.HostOptions.AuthOptions
	a.ServerName = h.Name
	a.CaCertRemotePath, a.ServerCertRemotePath, a.ServerKeyRemotePath = remoteCaCert, remoteServerCert, remoteServerKey
	if err := copyClientCerts(a); err != nil {
		return false, err
	}
	hosts := append([]string{h.Name, "localhost"}, a.ServerCertSANs...)
	if err := generateServerCert(a.ServerCertPath, a.ServerKeyPath, a.CaCertPath, a.CaPrivateKeyPath, certUsername()+"."+h.Name, hosts); err != nil {
		return false, fmt.Errorf("Error generating the server certificate: %s", err)
	}
	dropin, err := daemonDropin(h.DriverName, h.HostOptions.EngineOptions)
	if err != nil {
		return false, fmt.Errorf("generating the Docker daemon drop-in: %w", err)
	}
	b := drivers.TLSBootstrap{DaemonDropin: dropin}
	for _, f := range []struct {
		path string
		dst  *[]byte
	}{{a.CaCertPath, &b.CACert}, {a.ServerCertPath, &b.ServerCert}, {a.ServerKeyPath, &b.ServerKey}} {
		data, err := os.ReadFile(f.path)
		if err != nil {
			return false, err
		}
		*f.dst = data
	}
	return true, d.SetTLSBootstrap(b)
}

// waitForTLS stands in for the fork's TLS handshake wait (every second for
// up to 5 minutes against the Docker URL): dmclient never contacts the
// machine itself, so it checks the URL and says what it would dial.
func (m *dm) waitForTLS(h *Host, d *Driver) error {
	url, err := d.GetURL()
	if err != nil {
		return err
	}
	m.log.Infof("Waiting for the TLS handshake on %s as %q (dmclient stand-in: skipped, SSH provisioning skipped)", strings.TrimPrefix(url, "tcp://"), h.Name)
	for _, f := range []string{"ca.pem", "cert.pem", "key.pem", "server.pem", "server-key.pem"} {
		if missing(filepath.Join(h.HostOptions.AuthOptions.StorePath, f)) {
			return fmt.Errorf("TLS bootstrap: %s missing in the machine directory", f)
		}
	}
	return nil
}

// cmdUpdateLabels is the fork's `docker-machine update-labels`: the labels
// as key=value, handed to the driver's UpdateLabels.
func (m *dm) cmdUpdateLabels(args []string) error {
	fs, pos, err := parseCommand("update-labels", []cliFlag{
		{Name: "label", Kind: kindSlice, Usage: "Label to set on the machine, key=value (repeatable)"},
	}, args)
	if err != nil {
		return err
	}
	labels := map[string]string{}
	for _, l := range fs.Slice("label") {
		i := strings.Index(l, "=")
		if i < 0 {
			return fmt.Errorf("invalid label %q: expected key=value", l)
		}
		labels[l[:i]] = l[i+1:]
	}
	return m.runAction("update-labels", pos, func(h *Host) error {
		return h.drv.UpdateLabels(labels)
	})
}
