package snapshot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Encoding is a snapshot's JSON without its version. Two snapshots of a node with equal
// encodings have the same content, so a control plane compiling every node on every
// change tells the changed ones by their encodings; and the push stream puts the version
// in and sends the result as it is, so that each snapshot is encoded once.
type Encoding []byte

// versionPrefix is how the JSON of a snapshot of version 0 starts: Version is the
// first field.
var versionPrefix = []byte(`{"version":0`)

// Encode returns s's encoding; s.Version is left out.
func Encode(s *Snapshot) (Encoding, error) {
	c := *s
	c.Version = 0
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(b, versionPrefix) {
		return nil, fmt.Errorf("the JSON of a snapshot does not start with its version: %.40s", b)
	}
	return Encoding(b[len(versionPrefix):]), nil
}

// AppendJSON appends to dst the JSON of the encoded snapshot with version v, as
// json.Marshal writes it.
func (e Encoding) AppendJSON(dst []byte, v uint64) []byte {
	dst = append(dst, `{"version":`...)
	dst = strconv.AppendUint(dst, v, 10)
	return append(dst, e...)
}
