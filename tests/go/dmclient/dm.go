package main

// Role 2: `dmclient dm ...`, a stand-in for the docker-machine CLI with the
// same RPC sequences, store layout, console output and exit codes for the
// commands gitlab-runner uses (commands/commands.go, libmachine/host).

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

const dmVersion = "dev, build b170508b (dmclient stand-in)"

// machineDriver is what commands need from a loaded machine's driver.
type machineDriver interface {
	GetURL() (string, error)
	GetIP() (string, error)
	GetState() (State, error)
	DriverName() string
	GetMachineName() string
	GetConfigRaw() ([]byte, error)
	Void(method string) error
	UpdateLabels(labels map[string]string) error
}

// errDriver stands for a machine whose plugin binary is missing, like
// docker-machine's drivers/errdriver.
type errDriver struct{ Name string }

func (d *errDriver) err() error {
	return fmt.Errorf("Driver %q not found. Do you have the plugin binary accessible in your PATH?", d.Name)
}
func (d *errDriver) GetURL() (string, error)  { return "", d.err() }
func (d *errDriver) GetIP() (string, error)   { return "", d.err() }
func (d *errDriver) GetState() (State, error) { return StateError, d.err() }
func (d *errDriver) DriverName() string       { return "not-found" }
func (d *errDriver) GetMachineName() string   { return "" }
func (d *errDriver) GetConfigRaw() ([]byte, error) {
	return json.Marshal(d)
}
func (d *errDriver) Void(string) error                    { return d.err() }
func (d *errDriver) UpdateLabels(map[string]string) error { return d.err() }

// errPreCreate is mcnerror.ErrDuringPreCreate: the only error that makes
// docker-machine exit 3.
type errPreCreate struct{ Cause error }

func (e errPreCreate) Error() string {
	return fmt.Sprintf("Error with pre-create check: %q", e.Cause.Error())
}

var (
	errHostLoad           = errors.New("All specified hosts had errors loading their configuration")
	errNoDefault          = errors.New(`Error: No machine name(s) specified and no "default" machine exists`)
	errNoMachineSpecified = errors.New("Error: Expected to get one or more machine names as arguments")
	errExpectedOneMachine = errors.New("Error: Expected one machine name as an argument")
	errTooManyArguments   = errors.New("Error: Too many arguments given")
)

// usageError is a command-line error: "Incorrect Usage." and the command's
// help go to stdout, the error itself to stderr.
type usageError struct {
	err  error
	help string
}

func (e usageError) Error() string { return e.err.Error() }

type dm struct {
	log       *console
	store     *store
	poll      time.Duration
	heartbeat time.Duration
	// fork: behave as GitLab's fork (see dm_fork.go); logFormat is then the
	// plugins' MACHINE_PLUGIN_LOG_FORMAT.
	fork      bool
	logFormat string

	mu     sync.Mutex
	opened []*Driver

	// started and marks: milestones of the command (ms since it started), written as
	// JSON to $DMCLIENT_TIMES when set (benches/create_latency reads them).
	started time.Time
	marks   map[string]float64
}

// mark records milestone name once, in ms since the command started.
func (m *dm) mark(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.marks == nil {
		m.marks = map[string]float64{}
	}
	if _, seen := m.marks[name]; !seen {
		m.marks[name] = float64(time.Since(m.started).Microseconds()) / 1000
	}
}

// writeMarks writes the milestones to $DMCLIENT_TIMES, if set.
func (m *dm) writeMarks() {
	path := os.Getenv("DMCLIENT_TIMES")
	if path == "" {
		return
	}
	m.mu.Lock()
	b, _ := json.Marshal(m.marks)
	m.mu.Unlock()
	_ = os.WriteFile(path, b, 0o644)
}

var globalFlags = []cliFlag{
	{Name: "debug", Short: "D", Kind: kindBool, EnvVar: "MACHINE_DEBUG", Usage: "Enable debug mode"},
	{Name: "storage-path", Short: "s", Kind: kindString, EnvVar: "MACHINE_STORAGE_PATH", Usage: "Configures storage path"},
	{Name: "tls-ca-cert", Kind: kindString, EnvVar: "MACHINE_TLS_CA_CERT", Usage: "CA to verify remotes against"},
	{Name: "tls-ca-key", Kind: kindString, EnvVar: "MACHINE_TLS_CA_KEY", Usage: "Private key to generate certificates"},
	{Name: "tls-client-cert", Kind: kindString, EnvVar: "MACHINE_TLS_CLIENT_CERT", Usage: "Client cert to use for TLS"},
	{Name: "tls-client-key", Kind: kindString, EnvVar: "MACHINE_TLS_CLIENT_KEY", Usage: "Private key used in client TLS auth"},
	{Name: "github-api-token", Kind: kindString, EnvVar: "MACHINE_GITHUB_API_TOKEN", Usage: "Token to use for requests to the Github API"},
	{Name: "native-ssh", Kind: kindBool, EnvVar: "MACHINE_NATIVE_SSH", Usage: "Use the native (Go-based) SSH implementation."},
	{Name: "bugsnag-api-token", Kind: kindString, EnvVar: "MACHINE_BUGSNAG_API_TOKEN", Usage: "BugSnag API token for crash reporting (ignored)"},
	{Name: "poll", Kind: kindString, EnvVar: "DMCLIENT_POLL", DefString: "3s", Usage: "dmclient only: interval between GetState polls (docker-machine: 3s)"},
	{Name: "heartbeat", Kind: kindString, EnvVar: "DMCLIENT_HEARTBEAT", DefString: "5s", Usage: "dmclient only: heartbeat interval (docker-machine: 5s)"},
	{Name: "gitlab-fork", Kind: kindBool, EnvVar: "DMCLIENT_GITLAB_FORK", Usage: "dmclient only: behave as GitLab's docker-machine fork (v0.16.2-gitlab.N with TLS bootstrap and update-labels)"},
	{Name: "plugin-log-format", Kind: kindString, EnvVar: "DMCLIENT_PLUGIN_LOG_FORMAT", DefString: "text", Usage: "dmclient only, with --gitlab-fork: the plugins' MACHINE_PLUGIN_LOG_FORMAT (text or json)"},
}

const dmCommandsHelp = `Commands:
  config      Print the connection config for machine
  create      Create a machine
  inspect     Inspect information about a machine
  ip          Get the IP address of a machine
  kill        Kill a machine
  ls          List machines
  restart     Restart a machine
  rm          Remove a machine
  start       Start a machine
  status      Get the status of a machine
  stop        Stop a machine
  update-labels  Set provider labels on a machine (with --gitlab-fork)
  url         Get the URL of a machine
  version     Show the Docker Machine version
`

func dmUsage(fs *flagSet) string {
	return "Usage: dmclient dm [OPTIONS] COMMAND [arg...]\n\n" +
		"Stand-in for docker-machine (" + dmVersion + ")\n\nOptions:\n" + fs.Help() + "\n" + dmCommandsHelp
}

func runDM(args []string) int {
	gfs := newFlagSet(globalFlags)
	if gfs.String("storage-path") == "" {
		gfs.values["storage-path"] = defaultStore()
	}
	rest, err := gfs.Parse(args, true)
	if err == errHelp || (err == nil && (len(rest) == 0 || rest[0] == "help")) {
		fmt.Print(dmUsage(gfs))
		return 0
	}
	if err != nil {
		fmt.Println("Incorrect Usage.")
		fmt.Println()
		fmt.Print(dmUsage(gfs))
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	m := &dm{
		started: time.Now(),
		log:     newConsole(gfs.Bool("debug")),
		store: newStore(gfs.String("storage-path"), gfs.String("tls-ca-cert"), gfs.String("tls-ca-key"),
			gfs.String("tls-client-cert"), gfs.String("tls-client-key")),
	}
	m.fork = gfs.Bool("gitlab-fork")
	if m.fork {
		m.logFormat = gfs.String("plugin-log-format")
		if m.logFormat != "text" && m.logFormat != "json" {
			fmt.Fprintf(os.Stderr, "invalid --plugin-log-format %q (text or json)\n", m.logFormat)
			return 1
		}
	}
	for name, dst := range map[string]*time.Duration{"poll": &m.poll, "heartbeat": &m.heartbeat} {
		d, err := time.ParseDuration(gfs.String(name))
		if err != nil || d <= 0 {
			fmt.Fprintf(os.Stderr, "invalid --%s %q\n", name, gfs.String(name))
			return 1
		}
		*dst = d
	}
	m.log.Debugf("Docker Machine Version:  %s", dmVersion)

	commands := map[string]func([]string) error{
		"config":  m.cmdConfig,
		"create":  m.cmdCreate,
		"inspect": m.cmdInspect,
		"ip":      m.cmdIP,
		"kill":    m.cmdKill,
		"ls":      m.cmdLs,
		"restart": m.cmdRestart,
		"rm":      m.cmdRm,
		"start":   m.cmdStart,
		"status":  m.cmdStatus,
		"stop":    m.cmdStop,
		"url":     m.cmdURL,
		"version": m.cmdVersion,
	}
	if m.fork {
		commands["update-labels"] = m.cmdUpdateLabels
	}
	cmd, ok := commands[rest[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "docker-machine: '%s' is not a docker-machine command.\nSee 'dmclient dm --help'.\n", rest[0])
		return 1
	}
	err = cmd(rest[1:])
	m.mark("command_done")
	m.writeMarks()
	return m.finish(err)
}

// finish mirrors runCommand: on success every opened driver is closed; on
// failure the error is printed and the process exits at once (3 after a
// failed pre-create check, else 1) without closing the plugins, which then
// end by their heartbeat watchdog.
func (m *dm) finish(err error) int {
	if err == errHelp {
		m.closeAll()
		return 0
	}
	if err != nil {
		if ue, ok := err.(usageError); ok {
			fmt.Println("Incorrect Usage.")
			fmt.Println()
			fmt.Print(ue.help)
		}
		m.log.Errorf("%s", err)
		if _, ok := err.(errPreCreate); ok {
			return 3
		}
		return 1
	}
	m.closeAll()
	return 0
}

// openDriver starts a plugin and remembers it for closeAll.
func (m *dm) openDriver(driverName string, raw []byte) (*Driver, error) {
	d, err := openDriver(m.log, driverName, raw, m.heartbeat, m.logFormat)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.opened = append(m.opened, d)
	m.mu.Unlock()
	return d, nil
}

// closeAll closes the drivers in the order they were opened (api.Close).
func (m *dm) closeAll() {
	m.mu.Lock()
	opened := m.opened
	m.opened = nil
	m.mu.Unlock()
	for _, d := range opened {
		d.Close()
	}
}

// load reads config.json and starts the machine's plugin with the raw
// "Driver" member (libmachine Client.Load). A missing plugin binary is not
// an error here: the machine gets an errDriver.
func (m *dm) load(name string) (*Host, error) {
	h, err := m.store.Read(name)
	if err != nil {
		return nil, err
	}
	d, err := m.openDriver(h.DriverName, h.Driver)
	if _, notFound := err.(errPluginBinaryNotFound); notFound {
		h.drv = &errDriver{Name: h.DriverName}
		return h, nil
	}
	if err != nil {
		return nil, err
	}
	h.drv = d
	return h, nil
}

// parseCommand parses a command's own flags (allowed anywhere).
func parseCommand(name string, flags []cliFlag, args []string) (*flagSet, []string, error) {
	fs := newFlagSet(flags)
	pos, err := fs.Parse(args, false)
	if err == errHelp {
		fmt.Printf("Usage: docker-machine %s [OPTIONS] [arg...]\n\nOptions:\n%s", name, fs.Help())
		return nil, nil, errHelp
	}
	if err != nil {
		return nil, nil, usageError{err, fmt.Sprintf("Usage: docker-machine %s [OPTIONS] [arg...]\n\nOptions:\n%s", name, fs.Help())}
	}
	return fs, pos, nil
}

// targetHost is the first argument, or "default" if that machine exists.
func (m *dm) targetHost(args []string) (string, error) {
	if len(args) == 0 {
		exists, err := m.store.Exists("default")
		if err != nil {
			return "", fmt.Errorf("Error checking if host %q exists: %s", "default", err)
		}
		if exists {
			return "default", nil
		}
		return "", errNoDefault
	}
	return args[0], nil
}

func consolidateErrs(errs []error) error {
	msgs := []string{}
	for _, err := range errs {
		msgs = append(msgs, err.Error())
	}
	return errors.New(strings.TrimSpace(strings.Join(msgs, "\n")))
}

// runAction loads the machines (one plugin each), runs the action on all
// of them concurrently and saves them all if every action succeeded.
func (m *dm) runAction(name string, args []string, action func(*Host) error) error {
	names := args
	if len(names) == 0 {
		target, err := m.targetHost(args)
		if err != nil {
			return err
		}
		names = []string{target}
	}
	hosts := []*Host{}
	loadErrs := []error{}
	for _, n := range names {
		h, err := m.load(n)
		if err != nil {
			loadErrs = append(loadErrs, err)
			continue
		}
		hosts = append(hosts, h)
	}
	if len(loadErrs) > 0 {
		return consolidateErrs(loadErrs)
	}
	if len(hosts) == 0 {
		return errHostLoad
	}
	errCh := make(chan error, len(hosts))
	for _, h := range hosts {
		go func(h *Host) {
			m.log.Debugf("command=%s machine=%s", name, h.Name)
			errCh <- action(h)
		}(h)
	}
	errs := []error{}
	for range hosts {
		if err := <-errCh; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return consolidateErrs(errs)
	}
	for _, h := range hosts {
		if err := m.store.Save(h); err != nil {
			return fmt.Errorf("Error saving host to store: %s", err)
		}
	}
	return nil
}

// machineInState polls GetState once (drivers.MachineInState).
func (m *dm) machineInState(h *Host, want State) func() bool {
	return func() bool {
		st, err := h.drv.GetState()
		m.mark("first_get_state")
		if err != nil {
			m.log.Debugf("Error getting machine state: %s", err)
		}
		return st == want
	}
}

// waitFor calls f up to 60 times, --poll apart (mcnutils.WaitFor).
func (m *dm) waitFor(f func() bool) error {
	const attempts = 60
	for i := 0; i < attempts; i++ {
		if f() {
			return nil
		}
		time.Sleep(m.poll)
	}
	return fmt.Errorf("Maximum number of retries (%d) exceeded", attempts)
}

// skipProvisioning stands in for docker-machine's SSH steps (WaitForSSH,
// provisioner detection, Docker install and TLS set-up), which need a real
// machine: dmclient never contacts the machine itself.
func (m *dm) skipProvisioning() {
	m.log.Infof("Skipping SSH provisioning (dmclient stand-in)")
}
