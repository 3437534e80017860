// Package rpcdriver holds the argument type of the SetConfigFromFlags RPC,
// shaped like docker-machine's libmachine/drivers/rpc.RPCFlags.
//
// The package must be named rpcdriver: gob registers new(RPCFlags) under the
// name "*rpcdriver.RPCFlags" (package name, not import path), and a plugin
// only accepts the interface value under that exact name.
package rpcdriver

import "encoding/gob"

// RPCFlags carries the create-flag values, keyed by flag name. Values are
// string, int, bool or []string, as docker-machine sends them.
type RPCFlags struct {
	Values map[string]interface{}
}

func init() {
	gob.Register(new(RPCFlags))
}
