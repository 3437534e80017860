package main

// Launching a driver plugin and talking to it, the way docker-machine's
// libmachine/drivers/plugin/localbinary and libmachine/drivers/rpc do it.

import (
	"bufio"
	"fmt"
	"net/rpc"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"dmclient/drivers"
	"dmclient/mcnflag"
	"dmclient/rpcdriver"
)

const (
	pluginTokenEnv  = "MACHINE_PLUGIN_TOKEN"
	pluginTokenVal  = "42"
	pluginDriverEnv = "MACHINE_PLUGIN_DRIVER_NAME"
	// GitLab's fork tells its plugins the log format it wants (text, json).
	pluginLogFormatEnv = "MACHINE_PLUGIN_LOG_FORMAT"
	// docker-machine gives up on the address line after 10 s.
	addressTimeout = 10 * time.Second
	// docker-machine heartbeats every plugin every 5 s.
	defaultHeartbeat = 5 * time.Second
	serviceV1        = "RPCServerDriver"
	serviceV0        = "RpcServerDriver"
	apiVersion       = 1
	// Lines of plugin output kept for reports.
	keepStdoutLines = 2000
	keepStderrLines = 200
)

// pluginConfig says which binary to start and where its output lines go.
type pluginConfig struct {
	Path       string // binary, used as argv[0] too
	DriverName string // value of MACHINE_PLUGIN_DRIVER_NAME
	// OnStdout/OnStderr get every line after the address line, with the
	// machine name known at that moment ("" before GetMachineName).
	OnStdout func(machine, line string)
	OnStderr func(machine, line string)
	// LogFormat, when set, is MACHINE_PLUGIN_LOG_FORMAT for the plugin, as
	// GitLab's fork sets it ("text" or "json"); "" leaves the environment as
	// upstream docker-machine does.
	LogFormat string
}

// Plugin is one running plugin process.
type Plugin struct {
	cfg     pluginConfig
	cmd     *exec.Cmd
	Started time.Time
	Addr    string
	AddrAt  time.Time

	mu          sync.Mutex
	machine     string
	forward     bool
	stdout      []string
	stderr      []string
	stdoutCount int
	stderrCount int
	scanErrors  []string

	outR, errR *os.File // our read ends of the plugin's stdout and stderr

	exited   chan struct{}
	exitCode int // -1 when killed by a signal
	exitAt   time.Time
}

// pluginEnv is our environment plus the two variables docker-machine sets in
// its own environment right before it starts a plugin (and, for GitLab's
// fork, the plugin log format).
func pluginEnv(driverName, logFormat string) []string {
	env := []string{}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, pluginTokenEnv+"=") || strings.HasPrefix(kv, pluginDriverEnv+"=") {
			continue
		}
		if logFormat != "" && strings.HasPrefix(kv, pluginLogFormatEnv+"=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, pluginTokenEnv+"="+pluginTokenVal, pluginDriverEnv+"="+driverName)
	if logFormat != "" {
		env = append(env, pluginLogFormatEnv+"="+logFormat)
	}
	return env
}

// StartPlugin executes the binary with no arguments, stdin /dev/null and
// stdout/stderr pipes, and waits up to 10 s for the first stdout line (the
// address), like localbinary's Executor and Plugin.Address. The returned
// Plugin is non-nil whenever the process was started.
func StartPlugin(cfg pluginConfig) (*Plugin, error) {
	p := &Plugin{cfg: cfg, forward: true, exited: make(chan struct{})}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("Error getting cmd stdout pipe: %s", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("Error getting cmd stderr pipe: %s", err)
	}
	p.cmd = exec.Command(cfg.Path)
	p.cmd.Env = pluginEnv(cfg.DriverName, cfg.LogFormat)
	p.cmd.Stdout = outW
	p.cmd.Stderr = errW
	p.Started = time.Now()
	err = p.cmd.Start()
	// The child has its own copies of the write ends now.
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("Error starting plugin binary: %s", err)
	}
	go func() {
		p.cmd.Wait()
		p.exitAt = time.Now()
		p.exitCode = p.cmd.ProcessState.ExitCode()
		close(p.exited)
	}()

	p.outR, p.errR = outR, errR
	addrCh := make(chan string, 1)
	go p.readStdout(outR, addrCh)
	go p.readStderr(errR)
	select {
	case addr := <-addrCh:
		p.AddrAt = time.Now()
		p.Addr = strings.TrimSpace(addr)
		return p, nil
	case <-time.After(addressTimeout):
		return p, fmt.Errorf("Error attempting to get plugin server address for RPC: Failed to dial the plugin server in %s", addressTimeout)
	}
}

// readStdout hands the first line over as the address (docker-machine scans
// exactly one line; if the process ends first the address is "") and then
// forwards the remaining lines. Like docker-machine it uses a bufio.Scanner,
// so a line over 64 KiB ends the reading for good.
func (p *Plugin) readStdout(f *os.File, addrCh chan<- string) {
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		addrCh <- ""
		p.noteScanError("stdout", sc.Err())
		return
	}
	addrCh <- sc.Text()
	for sc.Scan() {
		p.line(false, sc.Text())
	}
	p.noteScanError("stdout", sc.Err())
}

func (p *Plugin) readStderr(f *os.File) {
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p.line(true, sc.Text())
	}
	p.noteScanError("stderr", sc.Err())
}

func (p *Plugin) noteScanError(pipe string, err error) {
	if err == nil {
		return
	}
	p.mu.Lock()
	p.scanErrors = append(p.scanErrors, pipe+": "+err.Error())
	p.mu.Unlock()
}

func (p *Plugin) line(stderr bool, text string) {
	p.mu.Lock()
	if stderr {
		p.stderrCount++
		if len(p.stderr) < keepStderrLines {
			p.stderr = append(p.stderr, text)
		}
	} else {
		p.stdoutCount++
		if len(p.stdout) < keepStdoutLines {
			p.stdout = append(p.stdout, text)
		}
	}
	forward, machine := p.forward, p.machine
	p.mu.Unlock()
	if !forward {
		return
	}
	if stderr && p.cfg.OnStderr != nil {
		p.cfg.OnStderr(machine, text)
	} else if !stderr && p.cfg.OnStdout != nil {
		p.cfg.OnStdout(machine, text)
	}
}

// SetMachineName sets the name shown in "(<name>) ..." output lines.
func (p *Plugin) SetMachineName(name string) {
	p.mu.Lock()
	p.machine = name
	p.mu.Unlock()
}

// MachineName is the name shown in output lines ("" until known).
func (p *Plugin) MachineName() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.machine
}

// StopForwarding drops later output lines, as docker-machine does once it
// closes a driver (they are still counted and kept for reports).
func (p *Plugin) StopForwarding() {
	p.mu.Lock()
	p.forward = false
	p.mu.Unlock()
}

// Output returns copies of the kept lines, the total line counts and any
// scanner errors.
func (p *Plugin) Output() (stdout, stderr []string, stdoutCount, stderrCount int, scanErrors []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string{}, p.stdout...), append([]string{}, p.stderr...),
		p.stdoutCount, p.stderrCount, append([]string{}, p.scanErrors...)
}

// CloseOutput closes our ends of the plugin's stdout and stderr pipes, as
// happens when docker-machine exits: the plugin's later writes then fail
// with EPIPE.
func (p *Plugin) CloseOutput() {
	p.StopForwarding()
	p.outR.Close()
	p.errR.Close()
}

// WaitExit waits up to d for the process to end and reports whether it did.
func (p *Plugin) WaitExit(d time.Duration) bool {
	select {
	case <-p.exited:
		return true
	case <-time.After(d):
		return false
	}
}

// Exited reports whether the process has ended, with its exit code (-1 when
// killed by a signal) and the time it ended.
func (p *Plugin) Exited() (bool, int, time.Time) {
	select {
	case <-p.exited:
		return true, p.exitCode, p.exitAt
	default:
		return false, 0, time.Time{}
	}
}

// Kill ends the process (used only by our own measurements to clean up).
func (p *Plugin) Kill() {
	if ok, _, _ := p.Exited(); !ok {
		p.cmd.Process.Kill()
		p.WaitExit(5 * time.Second)
	}
}

// errPluginBinaryNotFound is localbinary.ErrPluginBinaryNotFound.
type errPluginBinaryNotFound struct{ driver string }

func (e errPluginBinaryNotFound) Error() string {
	return fmt.Sprintf("Driver %q not found. Do you have the plugin binary %q accessible in your PATH?", e.driver, "docker-machine-driver-"+e.driver)
}

// Driver is a connected plugin: docker-machine's RPCClientDriver.
type Driver struct {
	P       *Plugin
	RPC     *rpc.Client
	service string
	log     *console

	hbStop    chan struct{}
	closeOnce sync.Once
}

// Call invokes <service>.<method>, logging it at debug level like
// docker-machine's InternalClient (heartbeats are not logged).
func (d *Driver) Call(method string, args, reply interface{}) error {
	if method != "Heartbeat" {
		d.log.Debugf("(%s) Calling .%s", d.P.MachineName(), method)
	}
	return d.RPC.Call(d.service+"."+method, args, reply)
}

// openDriver starts the plugin for driverName and prepares it the way
// docker-machine's NewRPCClientDriver does: GetVersion (retried once with the
// pre-0.5.1 service name), heartbeat goroutine, SetConfigRaw(rawDriver),
// GetMachineName. logFormat is GitLab's fork's plugin log format ("" for
// upstream docker-machine); in json mode, output lines that are JSON objects
// are re-emitted with their fields plus the machine name.
func openDriver(log *console, driverName string, rawDriver []byte, heartbeat time.Duration, logFormat string) (*Driver, error) {
	path, err := exec.LookPath("docker-machine-driver-" + driverName)
	if err != nil {
		return nil, errPluginBinaryNotFound{driverName}
	}
	log.Debugf("Found binary path at %s", path)
	log.Debugf("Launching plugin server for driver %s", driverName)
	jsonMode := logFormat == "json"
	p, err := StartPlugin(pluginConfig{
		Path:       path,
		DriverName: driverName,
		LogFormat:  logFormat,
		OnStdout: func(m, line string) {
			if !jsonMode || !log.ReemitJSON(m, line, "info") {
				log.Infof("(%s) %s", m, line)
			}
		},
		OnStderr: func(m, line string) {
			if !jsonMode || !log.ReemitJSON(m, line, "debug") {
				log.Debugf("(%s) DBG | %s", m, line)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	log.Debugf("Plugin server listening at address %s", p.Addr)
	client, err := rpc.DialHTTP("tcp", p.Addr)
	if err != nil {
		return nil, err
	}
	d := &Driver{P: p, RPC: client, service: serviceV1, log: log, hbStop: make(chan struct{})}

	var version int
	if err := d.Call("GetVersion", struct{}{}, &version); err != nil {
		log.Debugf("%s", err)
		log.Debugf("Client (%s) with %s does not work, re-attempting with %s", p.MachineName(), serviceV1, serviceV0)
		d.service = serviceV0
		if err := d.Call("GetVersion", struct{}{}, &version); err != nil {
			return nil, err
		}
	}
	if version != apiVersion {
		return nil, fmt.Errorf("Driver binary uses an incompatible API version (%d)", version)
	}
	log.Debugf("Using API Version  %d", version)

	go d.heartbeat(heartbeat)

	if err := d.Call("SetConfigRaw", rawDriver, nil); err != nil {
		return nil, err
	}
	p.SetMachineName(d.GetMachineName())
	return d, nil
}

// heartbeat calls Heartbeat every interval until the driver is closed. A
// failed heartbeat closes the driver, with docker-machine's message.
func (d *Driver) heartbeat(interval time.Duration) {
	for {
		select {
		case <-d.hbStop:
			return
		case <-time.After(interval):
			if err := d.Call("Heartbeat", struct{}{}, nil); err != nil {
				d.log.Warnf("Wrapper Docker Machine process exiting due to closed plugin server (%s)", err)
				d.Close()
				return
			}
		}
	}
}

// Close stops the heartbeat, calls Close (a failure is only a debug message:
// the plugin may exit before its reply is written) and stops forwarding the
// plugin's output, like docker-machine's RPCClientDriver.close. It then waits
// briefly for the process to end.
func (d *Driver) Close() {
	d.closeOnce.Do(func() {
		close(d.hbStop)
		d.log.Debugf("Making call to close driver server")
		if err := d.Call("Close", struct{}{}, nil); err != nil {
			d.log.Debugf("Failed to make call to close driver server: %s", err)
		} else {
			d.log.Debugf("Successfully made call to close driver server")
		}
		d.log.Debugf("Making call to close connection to plugin binary")
		d.P.StopForwarding()
		d.P.WaitExit(2 * time.Second)
	})
}

// The typed calls below mirror RPCClientDriver's methods. Getters whose Go
// signature has no error log a warning and return "" on failure.

func (d *Driver) stringCall(method string) (string, error) {
	var s string
	if err := d.Call(method, struct{}{}, &s); err != nil {
		return "", err
	}
	return s, nil
}

// GetMachineName returns the plugin's machine name ("" on error).
func (d *Driver) GetMachineName() string {
	name, err := d.stringCall("GetMachineName")
	if err != nil {
		d.log.Warnf("Error attempting call to get machine name: %s", err)
	}
	return name
}

// DriverName returns the plugin's driver name ("" on error).
func (d *Driver) DriverName() string {
	name, err := d.stringCall("DriverName")
	if err != nil {
		d.log.Warnf("Error attempting call to get driver name: %s", err)
	}
	return name
}

// GetCreateFlags returns the plugin's create flags (none on error).
func (d *Driver) GetCreateFlags() []mcnflag.Flag {
	var flags []mcnflag.Flag
	if err := d.Call("GetCreateFlags", struct{}{}, &flags); err != nil {
		d.log.Warnf("Error attempting call to get create flags: %s", err)
	}
	return flags
}

// SetConfigFromFlags sends the values as an interface holding RPCFlags.
func (d *Driver) SetConfigFromFlags(values map[string]interface{}) error {
	var opts interface{} = rpcdriver.RPCFlags{Values: values}
	return d.Call("SetConfigFromFlags", &opts, nil)
}

// GetConfigRaw returns the driver's JSON.
func (d *Driver) GetConfigRaw() ([]byte, error) {
	var data []byte
	if err := d.Call("GetConfigRaw", struct{}{}, &data); err != nil {
		return nil, err
	}
	return data, nil
}

// GetState returns the machine state; on error docker-machine uses Error.
func (d *Driver) GetState() (State, error) {
	var s int
	if err := d.Call("GetState", struct{}{}, &s); err != nil {
		return StateError, err
	}
	return State(s), nil
}

// GetURL returns the Docker URL.
func (d *Driver) GetURL() (string, error) { return d.stringCall("GetURL") }

// GetIP returns the machine IP.
func (d *Driver) GetIP() (string, error) { return d.stringCall("GetIP") }

// UpdateLabels is GitLab's fork's RPCClientDriver.UpdateLabels: the labels
// as a map[string]string, reply struct{}.
func (d *Driver) UpdateLabels(labels map[string]string) error {
	return d.Call("UpdateLabels", labels, &struct{}{})
}

// TLSBootstrapRequested is the fork's RPCClientDriver.TLSBootstrapRequested:
// argument struct{}, reply bool.
func (d *Driver) TLSBootstrapRequested() (bool, error) {
	var requested bool
	if err := d.Call("TLSBootstrapRequested", struct{}{}, &requested); err != nil {
		return false, err
	}
	return requested, nil
}

// SetTLSBootstrap is the fork's RPCClientDriver.SetTLSBootstrap: the
// drivers.TLSBootstrap struct, reply struct{}.
func (d *Driver) SetTLSBootstrap(b drivers.TLSBootstrap) error {
	return d.Call("SetTLSBootstrap", b, &struct{}{})
}

// Void calls a method that returns only an error (PreCreateCheck, Create,
// Remove, Start, Stop, Restart, Kill).
func (d *Driver) Void(method string) error {
	return d.Call(method, struct{}{}, nil)
}
