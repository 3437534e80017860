// Package mcnflag holds the create-flag types a docker-machine driver plugin
// returns from GetCreateFlags, shaped like docker-machine's
// libmachine/mcnflag.
//
// The package must be named mcnflag: gob registers a pointer type under
// "*" + package name + "." + type name, and the plugin sends the elements of
// the GetCreateFlags reply as interface values named *mcnflag.StringFlag,
// *mcnflag.IntFlag, *mcnflag.BoolFlag and *mcnflag.StringSliceFlag.
package mcnflag

import (
	"encoding/gob"
	"fmt"
)

// Flag is one create flag announced by a driver plugin.
type Flag interface {
	fmt.Stringer
	// Default is the flag's default value: string, int, []string, or nil
	// for a BoolFlag (which has no Value field on the wire).
	Default() interface{}
}

// StringFlag is a string-valued create flag.
type StringFlag struct {
	Name   string
	Usage  string
	EnvVar string
	Value  string
}

// IntFlag is an int-valued create flag.
type IntFlag struct {
	Name   string
	Usage  string
	EnvVar string
	Value  int
}

// BoolFlag is a boolean create flag; its default is always false.
type BoolFlag struct {
	Name   string
	Usage  string
	EnvVar string
}

// StringSliceFlag is a repeatable string create flag.
type StringSliceFlag struct {
	Name   string
	Usage  string
	EnvVar string
	Value  []string
}

func (f StringFlag) String() string      { return f.Name }
func (f IntFlag) String() string         { return f.Name }
func (f BoolFlag) String() string        { return f.Name }
func (f StringSliceFlag) String() string { return f.Name }

// Default returns the flag's default value.
func (f StringFlag) Default() interface{} { return f.Value }

// Default returns the flag's default value.
func (f IntFlag) Default() interface{} { return f.Value }

// Default returns nil: like docker-machine, callers turn that into false.
func (f BoolFlag) Default() interface{} { return nil }

// Default returns the flag's default value.
func (f StringSliceFlag) Default() interface{} { return f.Value }

func init() {
	// The same registrations docker-machine's rpcdriver package makes.
	gob.Register(new(StringFlag))
	gob.Register(new(IntFlag))
	gob.Register(new(BoolFlag))
	gob.Register(new(StringSliceFlag))
}
