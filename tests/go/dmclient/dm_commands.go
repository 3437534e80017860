package main

// The `dm` commands other than create, after docker-machine's commands/*.go
// and the state changes of libmachine/host/host.go.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/template"
)

// errHostAlreadyInState is mcnerror.ErrHostAlreadyInState.
func errHostAlreadyInState(name string, s State) error {
	return fmt.Errorf("Machine %q is already %s.", name, strings.ToLower(s.String()))
}

// runActionForState refuses when the machine is already in the wanted
// state, runs the action and polls GetState until it is.
func (m *dm) runActionForState(h *Host, method string, want State) error {
	if m.machineInState(h, want)() {
		return errHostAlreadyInState(h.Name, want)
	}
	if err := h.drv.Void(method); err != nil {
		return err
	}
	return m.waitFor(m.machineInState(h, want))
}

func (m *dm) hostStart(h *Host) error {
	m.log.Infof("Starting %q...", h.Name)
	if err := m.runActionForState(h, "Start", StateRunning); err != nil {
		return err
	}
	m.log.Infof("Machine %q was started.", h.Name)
	m.skipProvisioning() // WaitForDocker
	return nil
}

func (m *dm) hostStop(h *Host) error {
	m.log.Infof("Stopping %q...", h.Name)
	if err := m.runActionForState(h, "Stop", StateStopped); err != nil {
		return err
	}
	m.log.Infof("Machine %q was stopped.", h.Name)
	return nil
}

func (m *dm) hostKill(h *Host) error {
	m.log.Infof("Killing %q...", h.Name)
	if err := m.runActionForState(h, "Kill", StateStopped); err != nil {
		return err
	}
	m.log.Infof("Machine %q was killed.", h.Name)
	return nil
}

func (m *dm) hostRestart(h *Host) error {
	m.log.Infof("Restarting %q...", h.Name)
	if m.machineInState(h, StateStopped)() {
		if err := m.hostStart(h); err != nil {
			return err
		}
	} else if m.machineInState(h, StateRunning)() {
		if err := h.drv.Void("Restart"); err != nil {
			return err
		}
		if err := m.waitFor(m.machineInState(h, StateRunning)); err != nil {
			return err
		}
	}
	m.skipProvisioning() // WaitForDocker
	return nil
}

func (m *dm) cmdStop(args []string) error {
	_, pos, err := parseCommand("stop", nil, args)
	if err != nil {
		return err
	}
	return m.runAction("stop", pos, m.hostStop)
}

func (m *dm) cmdKill(args []string) error {
	_, pos, err := parseCommand("kill", nil, args)
	if err != nil {
		return err
	}
	return m.runAction("kill", pos, m.hostKill)
}

func (m *dm) cmdStart(args []string) error {
	_, pos, err := parseCommand("start", nil, args)
	if err != nil {
		return err
	}
	if err := m.runAction("start", pos, m.hostStart); err != nil {
		return err
	}
	m.log.Infof("Started machines may have new IP addresses. You may need to re-run the `docker-machine env` command.")
	return nil
}

func (m *dm) cmdRestart(args []string) error {
	_, pos, err := parseCommand("restart", nil, args)
	if err != nil {
		return err
	}
	if err := m.runAction("restart", pos, m.hostRestart); err != nil {
		return err
	}
	m.log.Infof("Restarted machines may have new IP addresses. You may need to re-run the `docker-machine env` command.")
	return nil
}

func (m *dm) cmdIP(args []string) error {
	_, pos, err := parseCommand("ip", nil, args)
	if err != nil {
		return err
	}
	return m.runAction("ip", pos, func(h *Host) error {
		ip, err := h.drv.GetIP()
		if err != nil {
			return fmt.Errorf("Error getting IP address: %s", err)
		}
		fmt.Println(ip)
		return nil
	})
}

// loadOne loads the single machine a command works on.
func (m *dm) loadOne(args []string) (*Host, error) {
	if len(args) > 1 {
		return nil, errExpectedOneMachine
	}
	target, err := m.targetHost(args)
	if err != nil {
		return nil, err
	}
	return m.load(target)
}

func (m *dm) cmdStatus(args []string) error {
	_, pos, err := parseCommand("status", nil, args)
	if err != nil {
		return err
	}
	h, err := m.loadOne(pos)
	if err != nil {
		return err
	}
	st, err := h.drv.GetState()
	if err != nil {
		return fmt.Errorf("error getting state for host %s: %s", h.Name, err)
	}
	m.log.Infof("%s", st)
	return nil
}

func (m *dm) cmdURL(args []string) error {
	_, pos, err := parseCommand("url", nil, args)
	if err != nil {
		return err
	}
	h, err := m.loadOne(pos)
	if err != nil {
		return err
	}
	u, err := h.drv.GetURL()
	if err != nil {
		return err
	}
	fmt.Println(u)
	return nil
}

// hostJSON serializes the host with the driver's current JSON, as
// json.Marshal(host) does in docker-machine (RPCClientDriver.MarshalJSON).
func hostJSON(h *Host, indent bool) ([]byte, error) {
	raw, err := h.drv.GetConfigRaw()
	if err != nil {
		return nil, fmt.Errorf("json: error calling MarshalJSON for type *rpcdriver.RPCClientDriver: %s", err)
	}
	h.Driver = raw
	if indent {
		return json.MarshalIndent(h, "", "    ")
	}
	return json.Marshal(h)
}

var inspectFuncs = template.FuncMap{
	"json": func(v interface{}) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
	"prettyjson": func(v interface{}) string {
		b, _ := json.MarshalIndent(v, "", "    ")
		return string(b)
	},
}

func (m *dm) cmdInspect(args []string) error {
	fs, pos, err := parseCommand("inspect", []cliFlag{
		{Name: "format", Short: "f", Kind: kindString, Usage: "Format the output using the given go template."},
	}, args)
	if err != nil {
		return err
	}
	h, err := m.loadOne(pos)
	if err != nil {
		return err
	}
	format := fs.String("format")
	if format == "" {
		out, err := hostJSON(h, true)
		if err != nil {
			return err
		}
		fmt.Println(string(out))
		return nil
	}
	tmpl, err := template.New("").Funcs(inspectFuncs).Parse(format)
	if err != nil {
		return fmt.Errorf("Template parsing error: %v\n", err)
	}
	out, err := hostJSON(h, false)
	if err != nil {
		return err
	}
	obj := map[string]interface{}{}
	if err := json.Unmarshal(out, &obj); err != nil {
		return err
	}
	if err := tmpl.Execute(os.Stdout, obj); err != nil {
		return err
	}
	os.Stdout.Write([]byte{'\n'})
	return nil
}

// certCheckError is what docker-machine's connection check reports when it
// cannot validate the daemon's certificate (check.ErrCertInvalid).
func certCheckError(host string, cause error) error {
	return fmt.Errorf("Error checking and/or regenerating the certs: There was an error validating certificates for host %q: %s\n"+
		"You can attempt to regenerate them using 'docker-machine regenerate-certs [name]'.\n"+
		"Be advised that this will trigger a Docker daemon restart which might stop running containers.\n", host, cause)
}

func parseSwarm(hostURL string, h *Host) (string, error) {
	so := h.HostOptions.SwarmOptions
	if so == nil || !so.Master {
		return "", fmt.Errorf("Error: %s is not a swarm master.  The --swarm flag is intended for use with swarm masters", h.Name)
	}
	u, err := url.Parse(so.Host)
	if err != nil {
		return "", fmt.Errorf("There was an error parsing the url: %s", err)
	}
	mu, err := url.Parse(hostURL)
	if err != nil {
		return "", fmt.Errorf("There was an error parsing the url: %s", err)
	}
	return fmt.Sprintf("tcp://%s:%s", mu.Hostname(), u.Port()), nil
}

// cmdConfig prints the Docker client flags. docker-machine checks the
// daemon's TLS certificate at the URL here; dmclient never contacts the
// machine and instead requires a non-empty URL and GetState == Running.
func (m *dm) cmdConfig(args []string) error {
	m.log.redirectInfoToStderr()
	fs, pos, err := parseCommand("config", []cliFlag{
		{Name: "swarm", Kind: kindBool, Usage: "Display the Swarm config instead of the Docker daemon"},
	}, args)
	if err != nil {
		return err
	}
	h, err := m.loadOne(pos)
	if err != nil {
		return err
	}
	boilerplate := func(err error) error { return fmt.Errorf("Error running connection boilerplate: %s", err) }
	dockerURL, err := h.drv.GetURL()
	if err != nil {
		return boilerplate(err)
	}
	if fs.Bool("swarm") {
		if dockerURL, err = parseSwarm(dockerURL, h); err != nil {
			return boilerplate(err)
		}
	}
	u, err := url.Parse(dockerURL)
	if err != nil {
		return boilerplate(fmt.Errorf("Error parsing URL: %s", err))
	}
	if u.Host == "" {
		return boilerplate(certCheckError(u.Host, errors.New("dial tcp: missing address")))
	}
	if st, err := h.drv.GetState(); err != nil || st != StateRunning {
		cause := fmt.Errorf("dmclient stand-in: the machine is not Running (state %q, error %v)", st, err)
		return boilerplate(certCheckError(u.Host, cause))
	}
	m.log.Debugf("%s", dockerURL)
	a := h.HostOptions.AuthOptions
	fmt.Printf("--tlsverify\n--tlscacert=%q\n--tlscert=%q\n--tlskey=%q\n-H=%s\n", a.CaCertPath, a.ClientCertPath, a.ClientKeyPath, dockerURL)
	return nil
}

func confirmInput(msg string) bool {
	fmt.Printf("%s (y/n): ", msg)
	var resp string
	if _, err := fmt.Scanln(&resp); err != nil {
		return false
	}
	return strings.HasPrefix(strings.ToLower(resp), "y")
}

// cmdRm removes machines: Remove on the plugin, then the local directory
// (always with -f; without -f only if Remove succeeded).
func (m *dm) cmdRm(args []string) error {
	fs, pos, err := parseCommand("rm", []cliFlag{
		{Name: "force", Short: "f", Kind: kindBool, Usage: "Remove local configuration even if machine cannot be removed, also implies an automatic yes (`-y`)"},
		{Name: "y", Kind: kindBool, Usage: "Assumes automatic yes to proceed with remove, without prompting further user confirmation"},
	}, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fmt.Printf("Usage: docker-machine rm [OPTIONS] [arg...]\n\nOptions:\n%s", fs.Help())
		return errNoMachineSpecified
	}
	m.log.Infof("About to remove %s", strings.Join(pos, ", "))
	m.log.Warnf("WARNING: This action will delete both local reference and remote instance.")
	force := fs.Bool("force")
	if !force && !fs.Bool("y") && !confirmInput("Are you sure?") {
		return nil
	}
	collected := []string{}
	collect := func(msg string) {
		if force {
			m.log.Errorf("%s", msg)
		}
		collected = append(collected, msg)
	}
	for _, name := range pos {
		err := m.removeRemote(name)
		if err != nil {
			collect(fmt.Sprintf("Error removing host %q: %s", name, err))
		}
		if err == nil || force {
			if exists, _ := m.store.Exists(name); !exists {
				collect(fmt.Sprintf("Can't remove \"%s\"", name))
			} else if err := m.store.Remove(name); err != nil {
				collect(fmt.Sprintf("Can't remove \"%s\"", name))
			} else {
				m.log.Infof("Successfully removed %s", name)
			}
		}
	}
	if len(collected) > 0 && !force {
		return errors.New(strings.Join(collected, "\n"))
	}
	return nil
}

func (m *dm) removeRemote(name string) error {
	h, err := m.load(name)
	if err != nil {
		return err
	}
	return h.drv.Void("Remove")
}

func (m *dm) cmdVersion(args []string) error {
	_, pos, err := parseCommand("version", nil, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fmt.Printf("docker-machine version %s\n", dmVersion)
		return nil
	}
	return errors.New("dmclient stand-in: `version MACHINE` needs the machine's Docker daemon, which dmclient never contacts")
}
