package main

// Command-line flags and the SetConfigFromFlags map, built the way
// docker-machine's commands/create.go (getDriverOpts) builds it.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"dmclient/mcnflag"
)

type flagKind int

const (
	kindString flagKind = iota
	kindInt
	kindBool
	kindSlice
)

func (k flagKind) String() string {
	return [...]string{"string", "int", "bool", "stringslice"}[k]
}

// cliFlag is one command-line flag (docker-machine's own or a driver's).
type cliFlag struct {
	Name      string
	Short     string // one-letter alias, e.g. "d" for "driver"
	Kind      flagKind
	EnvVar    string // environment variable(s) giving the default, comma-separated
	DefString string
	DefInt    int
	Usage     string
}

// sharedCreateFlags are docker-machine's own `create` flags (SharedCreateFlags
// in commands/create.go): name, type, default and environment variable.
var sharedCreateFlags = []cliFlag{
	{Name: "driver", Short: "d", Kind: kindString, DefString: "virtualbox", EnvVar: "MACHINE_DRIVER", Usage: "Driver to create machine with."},
	{Name: "engine-install-url", Kind: kindString, DefString: "https://get.docker.com", EnvVar: "MACHINE_DOCKER_INSTALL_URL", Usage: "Custom URL to use for engine installation"},
	{Name: "engine-opt", Kind: kindSlice, Usage: "Specify arbitrary flags to include with the created engine in the form flag=value"},
	{Name: "engine-insecure-registry", Kind: kindSlice, Usage: "Specify insecure registries to allow with the created engine"},
	{Name: "engine-registry-mirror", Kind: kindSlice, EnvVar: "ENGINE_REGISTRY_MIRROR", Usage: "Specify registry mirrors to use"},
	{Name: "engine-label", Kind: kindSlice, Usage: "Specify labels for the created engine"},
	{Name: "engine-storage-driver", Kind: kindString, Usage: "Specify a storage driver to use with the engine"},
	{Name: "engine-env", Kind: kindSlice, Usage: "Specify environment variables to set in the engine"},
	{Name: "swarm", Kind: kindBool, Usage: "Configure Machine to join a Swarm cluster"},
	{Name: "swarm-image", Kind: kindString, DefString: "swarm:latest", EnvVar: "MACHINE_SWARM_IMAGE", Usage: "Specify Docker image to use for Swarm"},
	{Name: "swarm-master", Kind: kindBool, Usage: "Configure Machine to be a Swarm master"},
	{Name: "swarm-discovery", Kind: kindString, Usage: "Discovery service to use with Swarm"},
	{Name: "swarm-strategy", Kind: kindString, DefString: "spread", Usage: "Define a default scheduling strategy for Swarm"},
	{Name: "swarm-opt", Kind: kindSlice, Usage: "Define arbitrary flags for Swarm master"},
	{Name: "swarm-join-opt", Kind: kindSlice, Usage: "Define arbitrary flags for Swarm join"},
	{Name: "swarm-host", Kind: kindString, DefString: "tcp://0.0.0.0:3376", Usage: "ip/socket to listen on for Swarm master"},
	{Name: "swarm-addr", Kind: kindString, Usage: "addr to advertise for Swarm (default: detect and use the machine IP)"},
	{Name: "swarm-experimental", Kind: kindBool, Usage: "Enable Swarm experimental features"},
	{Name: "tls-san", Kind: kindSlice, Usage: "Support extra SANs for TLS certs"},
}

// driverCliFlags converts the plugin's flags the way docker-machine's
// convertMcnFlagsToCliFlags does; a string-slice flag loses its default on
// the command line (the default only reaches the plugin through step 1 of
// driverOpts).
func driverCliFlags(flags []mcnflag.Flag) ([]cliFlag, error) {
	out := []cliFlag{}
	for _, f := range flags {
		switch t := f.(type) {
		case *mcnflag.StringFlag:
			out = append(out, cliFlag{Name: t.Name, Kind: kindString, EnvVar: t.EnvVar, DefString: t.Value, Usage: t.Usage})
		case *mcnflag.IntFlag:
			out = append(out, cliFlag{Name: t.Name, Kind: kindInt, EnvVar: t.EnvVar, DefInt: t.Value, Usage: t.Usage})
		case *mcnflag.BoolFlag:
			out = append(out, cliFlag{Name: t.Name, Kind: kindBool, EnvVar: t.EnvVar, Usage: t.Usage})
		case *mcnflag.StringSliceFlag:
			out = append(out, cliFlag{Name: t.Name, Kind: kindSlice, EnvVar: t.EnvVar, Usage: t.Usage})
		default:
			return nil, fmt.Errorf("Flag is unrecognized flag type: %T", t)
		}
	}
	return out, nil
}

// flagSet holds parsed values: defaults, then environment variables, then
// the command line (docker-machine's vendored codegangsta/cli semantics).
type flagSet struct {
	flags  []cliFlag
	values map[string]interface{}
	// set records flags given on the command line or, for string slices,
	// through their environment variable (cli's IsSet).
	set map[string]bool
	// cmdline records slice flags given on the command line, whose first
	// occurrence replaces an environment default.
	cmdline map[string]bool
}

func envValue(envVar string) (string, bool) {
	for _, name := range strings.Split(envVar, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if v := os.Getenv(name); v != "" {
			return v, true
		}
	}
	return "", false
}

func newFlagSet(flags []cliFlag) *flagSet {
	fs := &flagSet{flags: flags, values: map[string]interface{}{}, set: map[string]bool{}, cmdline: map[string]bool{}}
	for _, f := range flags {
		switch f.Kind {
		case kindString:
			fs.values[f.Name] = f.DefString
		case kindInt:
			fs.values[f.Name] = f.DefInt
		case kindBool:
			fs.values[f.Name] = false
		case kindSlice:
			fs.values[f.Name] = []string{}
		}
		env, ok := envValue(f.EnvVar)
		if !ok {
			continue
		}
		switch f.Kind {
		case kindString:
			fs.values[f.Name] = env
		case kindInt:
			if n, err := strconv.ParseInt(env, 0, 64); err == nil {
				fs.values[f.Name] = int(n)
			}
		case kindBool:
			if b, err := strconv.ParseBool(env); err == nil {
				fs.values[f.Name] = b
			}
		case kindSlice:
			parts := []string{}
			for _, s := range strings.Split(env, ",") {
				parts = append(parts, strings.TrimSpace(s))
			}
			fs.values[f.Name] = parts
			fs.set[f.Name] = true
		}
	}
	return fs
}

func (fs *flagSet) lookup(name string) *cliFlag {
	for i := range fs.flags {
		if fs.flags[i].Name == name || (fs.flags[i].Short != "" && fs.flags[i].Short == name) {
			return &fs.flags[i]
		}
	}
	return nil
}

// errHelp is returned when -h/--help is given.
var errHelp = errors.New("help requested")

// Parse reads flags anywhere among the arguments (codegangsta/cli reorders
// flags before positional arguments) until "--", with Go flag syntax:
// -name, --name, -name=value, --name value; a bool flag takes a value only
// with "=". Error texts are Go's flag package's.
func (fs *flagSet) Parse(args []string, stopAtFirstPositional bool) (positional []string, err error) {
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			return append(positional, args[i+1:]...), nil
		}
		if len(arg) < 2 || arg[0] != '-' {
			if stopAtFirstPositional {
				return append(positional, args[i:]...), nil
			}
			positional = append(positional, arg)
			continue
		}
		name := arg[1:]
		if name[0] == '-' {
			name = name[1:]
		}
		if len(name) == 0 || name[0] == '-' || name[0] == '=' {
			return nil, fmt.Errorf("bad flag syntax: %s", arg)
		}
		value, hasValue := "", false
		if eq := strings.Index(name, "="); eq >= 0 {
			name, value, hasValue = name[:eq], name[eq+1:], true
		}
		if name == "h" || name == "help" {
			return nil, errHelp
		}
		f := fs.lookup(name)
		if f == nil {
			return nil, fmt.Errorf("flag provided but not defined: -%s", name)
		}
		if f.Kind == kindBool {
			b := true
			if hasValue {
				if b, err = strconv.ParseBool(value); err != nil {
					return nil, fmt.Errorf("invalid boolean value %q for -%s: parse error", value, name)
				}
			}
			fs.values[f.Name] = b
			fs.set[f.Name] = true
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("flag needs an argument: -%s", name)
			}
			i++
			value = args[i]
		}
		switch f.Kind {
		case kindString:
			fs.values[f.Name] = value
		case kindInt:
			n, err := strconv.ParseInt(value, 0, 64)
			if err != nil {
				return nil, fmt.Errorf("invalid value %q for flag -%s: parse error", value, name)
			}
			fs.values[f.Name] = int(n)
		case kindSlice:
			cur := []string{}
			if fs.cmdline[f.Name] {
				cur = fs.values[f.Name].([]string)
			}
			fs.values[f.Name] = append(cur, value)
			fs.cmdline[f.Name] = true
		}
		fs.set[f.Name] = true
	}
	return positional, nil
}

func (fs *flagSet) String(name string) string {
	s, _ := fs.values[name].(string)
	return s
}

func (fs *flagSet) Bool(name string) bool {
	b, _ := fs.values[name].(bool)
	return b
}

func (fs *flagSet) Int(name string) int {
	n, _ := fs.values[name].(int)
	return n
}

func (fs *flagSet) Slice(name string) []string {
	s, _ := fs.values[name].([]string)
	if s == nil {
		return []string{}
	}
	return s
}

// Help lists the flags like `docker-machine <command> --help`.
func (fs *flagSet) Help() string {
	var b strings.Builder
	flags := append([]cliFlag{}, fs.flags...)
	sort.Slice(flags, func(i, j int) bool { return flags[i].Name < flags[j].Name })
	for _, f := range flags {
		name := "--" + f.Name
		if f.Short != "" {
			name += ", -" + f.Short
		}
		def := ""
		switch f.Kind {
		case kindString:
			if f.DefString != "" {
				def = fmt.Sprintf(" %q", f.DefString)
			}
		case kindInt:
			def = fmt.Sprintf(" \"%d\"", f.DefInt)
		case kindSlice:
			def = " [--" + f.Name + " option --" + f.Name + " option]"
		}
		env := ""
		if f.EnvVar != "" {
			env = " [$" + f.EnvVar + "]"
		}
		fmt.Fprintf(&b, "   %s%s\t%s%s\n", name, def, f.Usage, env)
	}
	return b.String()
}

// driverOpts builds the SetConfigFromFlags values like getDriverOpts:
//  1. every plugin flag with its default (BoolFlag: false; a nil string
//     slice is sent as an empty []string);
//  2. every flag the create command knows with its parsed value, except
//     string slices, which are only sent when set.
func driverOpts(pluginFlags []mcnflag.Flag, fs *flagSet) map[string]interface{} {
	values := map[string]interface{}{}
	for _, f := range pluginFlags {
		d := f.Default()
		if d == nil {
			d = false
		}
		if s, ok := d.([]string); ok && s == nil {
			d = []string{}
		}
		values[f.String()] = d
	}
	for _, f := range fs.flags {
		if f.Kind == kindSlice && !fs.set[f.Name] {
			continue
		}
		values[f.Name] = fs.values[f.Name]
	}
	return values
}

// applyOverrides merges a JSON object into the values, converting each value
// to the declared type of the flag of that name (string/number/bool/array
// to string/int/bool/[]string); unknown names keep their JSON type.
func applyOverrides(values map[string]interface{}, fs *flagSet, raw string) error {
	if strings.TrimSpace(raw) == "" {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var obj map[string]interface{}
	if err := dec.Decode(&obj); err != nil {
		return fmt.Errorf("-flags: %s", err)
	}
	for name, v := range obj {
		kind := jsonKind(v)
		if f := fs.lookup(name); f != nil && f.Name == name {
			kind = f.Kind
		}
		converted, err := convertJSON(v, kind)
		if err != nil {
			return fmt.Errorf("-flags: %s: %s", name, err)
		}
		values[name] = converted
	}
	return nil
}

func jsonKind(v interface{}) flagKind {
	switch v.(type) {
	case json.Number:
		return kindInt
	case bool:
		return kindBool
	case []interface{}:
		return kindSlice
	}
	return kindString
}

func convertJSON(v interface{}, kind flagKind) (interface{}, error) {
	switch kind {
	case kindString:
		switch t := v.(type) {
		case string:
			return t, nil
		case json.Number:
			return t.String(), nil
		case bool:
			return strconv.FormatBool(t), nil
		}
	case kindInt:
		switch t := v.(type) {
		case json.Number:
			n, err := strconv.ParseInt(t.String(), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("not an integer: %s", t)
			}
			return int(n), nil
		case string:
			n, err := strconv.ParseInt(t, 0, 64)
			if err != nil {
				return nil, fmt.Errorf("not an integer: %q", t)
			}
			return int(n), nil
		}
	case kindBool:
		switch t := v.(type) {
		case bool:
			return t, nil
		case string:
			return strconv.ParseBool(t)
		}
	case kindSlice:
		switch t := v.(type) {
		case []interface{}:
			out := []string{}
			for _, e := range t {
				s, err := convertJSON(e, kindString)
				if err != nil {
					return nil, err
				}
				out = append(out, s.(string))
			}
			return out, nil
		case string:
			return []string{t}, nil
		}
	}
	return nil, fmt.Errorf("cannot use %v as %s", v, kind)
}
