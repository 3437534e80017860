// Package drivers holds the argument type of GitLab's docker-machine fork's
// SetTLSBootstrap RPC, shaped like the fork's libmachine/drivers.TLSBootstrap.
//
// It is sent as a concrete struct, not through an interface, so gob only
// names it by its bare type name ("TLSBootstrap") in the type definition;
// the package name does not reach the wire.
package drivers

// TLSBootstrap is what dockerd on the machine needs to serve TLS: the CA,
// the server keypair (valid for the machine name), and the systemd drop-in
// that adds the TLS listener.
type TLSBootstrap struct {
	CACert       []byte
	ServerCert   []byte
	ServerKey    []byte
	DaemonDropin []byte
}
